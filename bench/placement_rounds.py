#!/usr/bin/env python3
"""Scheduler-placed sync-call p50 for each relay / server / caller mix (issue 11 §2), outside
run_bench.py: interleaved rounds, nothing pinned, 100-byte echo calls.

    python3 bench/placement_rounds.py [--fresh] [--sessions] [--haltpoll NS] [ROUNDS [CALLS [WARMUP]]]
        (defaults: 6 rounds, 5000 calls, 200 warm-up calls)

A mix is RELAY/SERVER/CALLER: the relay is `c` (bench/build/crelay), `m` (mipc_main) or
`mp` (mipc_main polling its root queue up to $BENCH_POLL_US microseconds, default 5, before
it sleeps: `mipc_main -p`), `m0` (mipc_main offering no answers straight back:
MIPC_ANSWER_BACK=0, docs/PROTOCOL.md §11) or `ma` (offering them to a lone caller too:
MIPC_ANSWER_BACK=always), the server and caller `raw` (rawpeer.c: raw msgsnd/msgrcv),
`rawt` (rawpeer with one more thread, which only sleeps: BENCH_IDLE_THREAD=1), `raw3`
(rawpeer answering straight to its callers' queues, 3 hops: BENCH_ANSWER_BACK=1), `lib`
(mipc_peer: libmipc) or `libt` (a libmipc caller whose calls have a 5 s timeout, so its
waker thread runs).
MIXES (comma-separated) picks them; the default is the four where server and caller match
plus the two where they differ, with the C relay.

By default each mix keeps one relay and one server for the whole run and starts a new
caller every round, as `make bench` does; with --fresh every round starts a new relay,
server and caller. Every process runs in this script's session, as in `make bench`; with
--sessions each relay, server and caller gets a session of its own, hence (with
kernel.sched_autogroup_enabled) a scheduling group of its own. With --haltpoll NS (root, on a KVM guest using the haltpoll cpuidle
driver) the guest's idle loop polls up to NS ns before it halts
(/sys/module/haltpoll/parameters/guest_halt_poll_ns) for the run, and the old value is put
back at the end, on an error or on SIGINT/SIGTERM.

Prints each round's p50 (us) with the migrations of the relay's and server's threads during
the round, and each mix's median. Needs `make -f bench/bench.mk bench-build` and a release
mipc_main first; every process it starts is stopped and removes its queues.
"""
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HALTPOLL = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
RELAYS = {"c": ["bench/build/crelay"], "m": ["target/release/mipc_main"],
          "mp": ["target/release/mipc_main", "-p", os.environ.get("BENCH_POLL_US", "5")],
          "m0": ["env", "MIPC_ANSWER_BACK=0", "target/release/mipc_main"],
          "ma": ["env", "MIPC_ANSWER_BACK=always", "target/release/mipc_main"]}
PEERS = {"raw": "bench/build/rawpeer", "rawt": "bench/build/rawpeer", "lib": "bench/build/mipc_peer",
         "libt": "bench/build/mipc_peer", "raw3": "bench/build/rawpeer"}
DEFAULT_MIXES = "c/raw/raw,m/lib/lib,c/lib/lib,m/raw/raw,c/raw/lib,c/lib/raw"


def start(argv, env, session=False):
    """Starts a relay or server and waits for its "ready" line."""
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=session)
    while True:
        line = p.stdout.readline()
        if "ready" in line or not line:
            return p


def stop(p):
    try:
        p.stdin.close()
        p.wait(timeout=5)
    except Exception:
        p.terminate()
        p.wait()


def migrations(pid):
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/sched" % (pid, t)) as f:
            for line in f:
                if line.startswith("se.nr_migrations"):
                    total += int(line.split()[-1])
    return total


SESSIONS = False  # --sessions: every process in a session of its own


class Mix:
    """One relay and one server on a key of their own."""

    def __init__(self, spec):
        self.spec = spec
        self.relay_kind, self.server_kind, self.caller_kind = spec.split("/")
        self.env = dict(os.environ, MIPC_ROOT_KEY=hex(0x4D4A0000 + random.randrange(1, 0xFFFF)))
        self.procs = []

    def up(self):
        self.procs.append(start(RELAYS[self.relay_kind], self.env, SESSIONS))
        self.procs.append(start([PEERS[self.server_kind], "serve", "psrv"], self.peer_env(self.server_kind),
                                SESSIONS))

    def peer_env(self, kind):
        extra = {"rawt": {"BENCH_IDLE_THREAD": "1"}, "libt": {"BENCH_CALL_TIMEOUT_MS": "5000"},
                 "raw3": {"BENCH_ANSWER_BACK": "1"}}
        return dict(self.env, **extra.get(kind, {}))

    def down(self):
        while self.procs:
            p = self.procs.pop()
            if self.procs:
                stop(p)  # the server: leaves when its stdin closes
            else:
                p.terminate()  # the relay: removes its root queue on SIGTERM
                p.wait()

    def call(self, calls, warmup, samples):
        """One caller of `calls` timed calls; returns (p50 us, relay+server migrations)."""
        m0 = sum(migrations(p.pid) for p in self.procs)
        subprocess.run([PEERS[self.caller_kind], "call", "pcli", "psrv", "100", str(calls), str(warmup),
                        "0", samples], env=self.peer_env(self.caller_kind), cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, start_new_session=SESSIONS)
        moved = sum(migrations(p.pid) for p in self.procs) - m0
        with open(samples, "rb") as f:
            d = f.read()
        xs = sorted(struct.unpack("%dI" % (len(d) // 4), d))
        return xs[len(xs) // 2] / 1000, moved


def set_haltpoll(value):
    with open(HALTPOLL, "w") as f:
        f.write(str(value))


def main():
    global SESSIONS
    args = sys.argv[1:]
    fresh = "--fresh" in args
    SESSIONS = "--sessions" in args
    args = [a for a in args if a not in ("--fresh", "--sessions")]
    haltpoll = None
    if "--haltpoll" in args:
        i = args.index("--haltpoll")
        haltpoll = int(args[i + 1])
        del args[i:i + 2]
    rounds = int(args[0]) if len(args) > 0 else 6
    calls = int(args[1]) if len(args) > 1 else 5000
    warmup = int(args[2]) if len(args) > 2 else 200
    mixes = [Mix(s) for s in os.environ.get("MIXES", DEFAULT_MIXES).split(",")]
    res = {m.spec: [] for m in mixes}
    old = None
    if haltpoll is not None:
        with open(HALTPOLL) as f:
            old = int(f.read())
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        set_haltpoll(haltpoll)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            samples = os.path.join(tmp, "samples")
            if not fresh:
                for m in mixes:
                    m.up()
            for rnd in range(rounds):
                k = rnd % len(mixes)
                for m in mixes[k:] + mixes[:k]:  # rotate: no mix always runs first
                    if fresh:
                        m.up()
                    try:
                        res[m.spec].append(m.call(calls, warmup, samples))
                    finally:
                        if fresh:
                            m.down()
    finally:
        for m in mixes:
            m.down()
        if old is not None:
            set_haltpoll(old)
    print("relay/server/caller, %s processes%s, guest_halt_poll_ns %s: median p50 | each round's "
          "p50 us / migrations" % ("fresh" if fresh else "long-lived", ", a session each" if SESSIONS else "",
                                  "unchanged" if haltpoll is None else haltpoll))
    for m in mixes:
        print("%-12s median %5.1f us | %s" % (m.spec, statistics.median(x[0] for x in res[m.spec]),
                                               "  ".join("%5.1f/%d" % x for x in res[m.spec])))


if __name__ == "__main__":
    main()
