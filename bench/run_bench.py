#!/usr/bin/env python3
"""run_bench.py: the mipc-rs benchmark driver (run by `make bench`, see bench/bench.mk).

Runs the whole suite in one go, so that every ratio compares figures of the same run, then
rewrites docs/PERFORMANCE.md, docs/perf/sync-latency.png and docs/perf/results.json.

  1. latency: the floor (raw SysV ping-pong, 2 hops), the minimal C relay (4 hops, raw C
     peers) and the mipc-rs sync call (mipc_send_sync_msg through mipc_main), 100 B and
     2048 B, in interleaved rounds; once with every process of a benchmark on one CPU, once
     where the scheduler puts them;
  2. throughput: async mipc_send_msg floods (1, 4, 16 sender processes to 1 and 4
     receivers) through mipc_main and through the bare C forwarding loop, alternated; sync
     calls/s with 4 and 16 concurrent callers through both;
  3. cost: relay CPU per forwarded message, relay RSS idle / with 1000 entries / under the
     floods, relay CPU and wake-ups over 10 s idle, stripped sizes.

Every queue made is removed at the end, also on failure or Ctrl-C: the programs log the
queues they make to a file; the root queues are also removed by key.
"""
import argparse
import array
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_config import (  # noqa: E402
    LAT_ROUNDS_PINNED, LAT_COUNT_PINNED, LAT_ROUNDS_SCHED, LAT_COUNT_SCHED, LAT_WARMUP,
    FLOOD_TOTAL_SPLIT, FLOOD_REPS_SPLIT, FLOOD_TOTAL_SCHED, FLOOD_SENDERS, FLOOD_RECEIVERS,
    FLOOD_PAYLOAD, SYNC_TOTAL, EVENT_SUBSCRIBERS, EVENT_DELIVERIES, EVENT_PAYLOAD, SYNC_REPS,
    SYNC_CALLERS, ROOTQ_BYTES, ROOTQ_SENDERS, ROOTQ_PER_SENDER, ROOTQ_PAYLOAD, ROOTQ_REPS,
    BACKLOG_BOUNDS, BACKLOG_FLOODS, BACKLOG_REPS, REG_ENTRIES, IDLE_SECONDS,
)
from bench_common import (  # noqa: E402
    BenchError, sysv_queues, remove_queue, queue_of_key, tasks, cpu_ns, TICK_NS, cpu_ticks,
    ctx_switches, status_kb, last_cpu, migrations, set_affinity, percentile, own_group, Proc,
    Sampler, machine, median, pooled_delivery,
)
from bench_report import (  # noqa: E402
    make_chart, report,
)


# ---------------------------------------------------------------- the suite

class Bench:
    def __init__(self, args):
        self.args = args
        self.repo = os.path.abspath(args.repo)
        self.build = os.path.abspath(args.build)
        # The root-queue probe runs in an IPC namespace of its own: its own logs and queue log.
        sub = "-rootq" if getattr(args, "root_queue_probe", "") else ""
        self.logs = os.path.join(self.build, "logs" + sub)
        self.samples_dir = os.path.join(self.build, "samples" + sub)
        self.docs = os.path.join(self.repo, "docs")
        self.perf = os.path.join(self.docs, "perf")
        self.release = os.path.join(self.repo, "target", "release")
        self.relay_bin = os.path.join(self.release, "mipc_main")
        self.lib = os.path.join(self.release, "libmipc.so")
        self.qlog = os.path.join(self.build, "queues%s.log" % sub)
        self.procs = []
        self.keys = []
        self.relay = None
        self.crelay = None
        self.servers = {}
        self.seq = 0
        self.direct_env = {}
        # A previous release (bench.mk BENCH_BASELINE): its relay, library and caller/server.
        self.base_dir = os.path.abspath(args.baseline) if args.baseline else None
        self.base_label = args.baseline_label or "previous release"
        self.brelay = None
        for item in shlex.split(args.direct_env or ""):
            k, _, v = item.partition("=")
            self.direct_env[k] = v
        # Environment of every mipc_main of this tree the run starts (e.g. MIPC_POLL_US=5).
        self.relay_env = {}
        for item in shlex.split(getattr(args, "relay_env", "") or ""):
            k, _, v = item.partition("=")
            self.relay_env[k] = v
        # Extra environment of the peers of mipc_main's floods (flood_check.py --legacy-peers).
        self.mipc_peer_env = {}
        self.results = {"errors": []}
        self.rounds = {}
        self.scale = args.scale
        for d in (self.logs, self.samples_dir, self.perf):
            os.makedirs(d, exist_ok=True)
        for f in os.listdir(self.logs):
            os.unlink(os.path.join(self.logs, f))
        for f in os.listdir(self.samples_dir):
            os.unlink(os.path.join(self.samples_dir, f))
        if os.path.exists(self.qlog):
            os.unlink(self.qlog)
        allowed = sorted(os.sched_getaffinity(0))
        self.all_cpus = set(allowed)
        self.one_cpu = {allowed[-1]}

    # -- helpers

    def bin(self, name):
        return os.path.join(self.build, name)

    def n(self, count):
        return max(1, int(count * self.scale))

    def uniq(self, prefix):
        self.seq += 1
        return "%s%d" % (prefix, self.seq)

    def env(self, key, extra=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("MIPC_")}
        e["MIPC_ROOT_KEY"] = "%#x" % key
        e["BENCH_QLOG"] = self.qlog
        if extra:
            e.update(extra)
        return e

    def pick_key(self):
        used = {k for k, _, _ in sysv_queues().values()}
        rng = random.Random(os.getpid() ^ time.time_ns())
        while True:
            key = 0x4D420000 | rng.randrange(1, 0xFFFF)
            if key not in used and key not in self.keys and key != 0x4D495043:
                self.keys.append(key)
                return key

    def log(self, msg):
        print("bench: %s" % msg, flush=True)

    def load_samples(self, path):
        a = array.array("I")
        with open(path, "rb") as f:
            a.frombytes(f.read())
        os.unlink(path)
        return a

    # -- setup and teardown

    def start_relays(self):
        self.key = self.pick_key()
        self.ckey = self.pick_key()
        self.relay_log = os.path.join(self.logs, "mipc_main.log")
        self.relay = self.start_mipc_main(self.relay_bin, self.key, self.relay_log)
        self.crelay = Proc(self, "crelay", [self.bin("crelay")], self.env(self.ckey))
        self.crelay.wait_ready()
        if self.base_dir:
            self.bkey = self.pick_key()
            self.brelay = self.start_mipc_main(os.path.join(self.base_dir, "mipc_main"), self.bkey,
                                               os.path.join(self.logs, "mipc_main_base.log"))
            self.log("baseline (%s) mipc_main pid %d on key %#x" % (self.base_label, self.brelay.pid, self.bkey))
        self.log("mipc_main pid %d on key %#x, crelay pid %d on key %#x"
                 % (self.relay.pid, self.key, self.crelay.pid, self.ckey))

    def start_mipc_main(self, path, key, log_path, extra_env=None):
        """Starts a mipc_main on `key` and waits for its "ready:" line (it logs to stderr)."""
        if path == self.relay_bin and self.relay_env:
            extra_env = dict(self.relay_env, **(extra_env or {}))
        log = open(log_path, "w")
        relay = subprocess.Popen([path], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 env=self.env(key, extra_env), preexec_fn=own_group)
        log.close()
        end = time.monotonic() + 10
        while True:
            with open(log_path) as f:
                if ": ready:" in f.read():
                    return relay
            if relay.poll() is not None:
                with open(log_path) as f:
                    raise BenchError("%s exited (status %s): %s" % (path, relay.returncode, f.read().strip()))
            if time.monotonic() > end:
                relay.kill()
                raise BenchError("%s printed no 'ready' within 10 s" % path)
            time.sleep(0.005)

    @staticmethod
    def stop_mipc_main(relay):
        if relay and relay.poll() is None:
            relay.terminate()
            try:
                relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()

    def start_servers(self):
        s = Proc(self, "srv_mipc", [self.bin("mipc_peer"), "serve", "bsrv"], self.env(self.key))
        s.wait_ready()
        self.servers["mipc"] = s
        s = Proc(self, "srv_raw", [self.bin("rawpeer"), "serve", "rsrv"], self.env(self.ckey))
        s.wait_ready()
        self.servers["crelay"] = s
        if self.direct_env:
            s = Proc(self, "srv_direct", [self.bin("mipc_peer"), "serve", "bsrvd"],
                     self.env(self.key, self.direct_env))
            s.wait_ready()
            self.servers["direct"] = s
        if self.base_dir:
            s = Proc(self, "srv_base", [os.path.join(self.base_dir, "mipc_peer"), "serve", "bsrvb"],
                     self.env(self.bkey))
            s.wait_ready()
            self.servers["base"] = s

    def place(self, cpus):
        """Puts the long-lived processes (relays, servers) on `cpus`."""
        relays = [self.relay.pid, self.crelay.pid] + ([self.brelay.pid] if self.brelay else [])
        for pid in relays + [s.pid for s in self.servers.values()]:
            set_affinity(pid, cpus)

    def cleanup(self):
        for p in reversed(self.procs):
            if p is not self.crelay:
                try:
                    p.stop()
                except Exception as e:  # keep cleaning
                    self.log("stopping %s: %s" % (p.name, e))
        if self.crelay:
            self.crelay.stop()
        self.stop_mipc_main(self.brelay)
        self.stop_mipc_main(self.relay)
        left = []
        ids = set()
        if os.path.exists(self.qlog):
            with open(self.qlog) as f:
                ids = {int(x) for x in f.read().split()}
        existing = sysv_queues()
        for qid in sorted(ids):
            if qid in existing and existing[qid][0] in (0,) + tuple(self.keys):
                remove_queue(qid)
                left.append(qid)
        for key in self.keys:
            qid = queue_of_key(key)
            if qid is not None:
                remove_queue(qid)
                left.append(qid)
        if left:
            self.log("removed %d queue(s) left behind: %s" % (len(left), left))
        return left

    # -- 1. latency

    def variants(self):
        v = []
        for size in (100, 2048):
            v.append(("floor", size))
            v.append(("crelay", size))
            v.append(("mipc", size))
            if size == 100:
                v.append(("synccall", size))
            if self.direct_env:
                v.append(("direct", size))
            if self.base_dir:
                v.append(("base", size))
        return v

    def run_call(self, kind, size, count, cpus, path):
        name = self.uniq("c")
        if kind == "floor":
            argv = [self.bin("pingpong"), str(size), str(count), str(LAT_WARMUP), path]
            env = self.env(self.ckey)
        elif kind == "crelay":
            argv = [self.bin("rawpeer"), "call", name, "rsrv", str(size), str(count), str(LAT_WARMUP), "0", path]
            env = self.env(self.ckey)
        elif kind == "synccall":
            argv = [self.bin("synccall"), name, "bsrv", str(size), str(count), str(LAT_WARMUP)]
            env = self.env(self.key)
        elif kind == "base":
            argv = [os.path.join(self.base_dir, "mipc_peer"), "call", name, "bsrvb", str(size), str(count),
                    str(LAT_WARMUP), "0", path]
            env = self.env(self.bkey)
        else:
            server = "bsrvd" if kind == "direct" else "bsrv"
            argv = [self.bin("mipc_peer"), "call", name, server, str(size), str(count), str(LAT_WARMUP), "0", path]
            env = self.env(self.key, self.direct_env if kind == "direct" else None)
        p = Proc(self, "lat_%s_%d" % (kind, size), argv, env, cpus=cpus, stdin=False)
        where = self.watch_placement(kind, p, 60)
        res = p.result()
        if kind == "synccall":
            return array.array("I"), res["p50_ns"], where
        a = self.load_samples(path)
        return a, percentile(sorted(a), 0.50), where

    def watch_placement(self, kind, p, timeout):
        """Waits for caller `p`, sampling every 2 ms the CPU that the caller, the relay's
        main thread and the server last ran on. Returns the share of samples with all three
        on one CPU, and the relay's and server's migrations during the call loop."""
        if kind == "floor":
            p.wait(timeout)
            return None
        impl = {"crelay": "crelay", "base": "base"}.get(kind, "direct" if kind == "direct" else "mipc")
        relay = {"crelay": self.crelay, "base": self.brelay}.get(impl, self.relay)
        server = self.servers[impl]
        m0 = migrations(relay.pid) + migrations(server.pid)
        same = total = 0
        end = time.monotonic() + timeout
        while p.p.poll() is None:
            cpus = {last_cpu(p.pid), last_cpu(relay.pid), last_cpu(server.pid)}
            if None not in cpus:
                total += 1
                same += len(cpus) == 1
            if time.monotonic() > end:
                raise BenchError("%s did not finish within %.0f s" % (p.name, timeout))
            time.sleep(0.002)
        return {"colocated": same / total if total else float("nan"),
                "migrations": migrations(relay.pid) + migrations(server.pid) - m0}

    def latency(self):
        modes = [("one_cpu", self.one_cpu, LAT_ROUNDS_PINNED, LAT_COUNT_PINNED),
                 ("sched", self.all_cpus, LAT_ROUNDS_SCHED, LAT_COUNT_SCHED)]
        out = {}
        for mode, cpus, rounds, count in modes:
            count = self.n(count)
            self.place(cpus)
            samples = {v: array.array("I") for v in self.variants()}
            rounds_of = {"%s_%d" % v: [] for v in self.variants()}
            t = time.monotonic()
            for rnd in range(rounds):
                order = self.variants()
                k = rnd % len(order)
                order = order[k:] + order[:k]  # rotate: no variant always runs first
                for kind, size in order:
                    path = os.path.join(self.samples_dir, "%s_%s_%d.bin" % (mode, kind, size))
                    a, p50, where = self.run_call(kind, size, count, cpus, path)
                    samples[(kind, size)].extend(a)
                    rounds_of["%s_%d" % (kind, size)].append({"p50_us": p50 / 1000.0, "placement": where})
            out[mode] = {"%s_%d" % k: v for k, v in samples.items() if len(v)}
            self.rounds[mode] = rounds_of
            self.log("latency (%s): %d rounds x %d calls per variant in %.1f s"
                     % (mode, rounds, count, time.monotonic() - t))
        self.place(self.all_cpus)
        self.lat_samples = out
        stats = {}
        for mode, per in out.items():
            stats[mode] = {}
            for name, a in per.items():
                s = sorted(a)
                stats[mode][name] = {
                    "n": len(s),
                    "p50_us": percentile(s, 0.50) / 1000.0,
                    "p99_us": percentile(s, 0.99) / 1000.0,
                    "p999_us": percentile(s, 0.999) / 1000.0,
                    "max_us": s[-1] / 1000.0,
                    "mean_us": sum(s) / len(s) / 1000.0,
                }
        self.results["latency"] = stats
        self.results["latency_rounds"] = self.rounds

    # -- 2. throughput

    def relay_pid(self, impl):
        return self.relay.pid if impl == "mipc" else self.crelay.pid

    def impl_env(self, impl):
        if impl == "mipc":
            return self.env(self.key, self.mipc_peer_env)
        return self.env(self.ckey, {"MIPC_LEGACY_WIRE": "1"})

    def flood(self, impl, senders, receivers, total, cpus=None, payload=FLOOD_PAYLOAD, during=None):
        """One async flood (see the floods' section). `during`, if given, is called once the
        senders are released; its result, and whether every sender was still sending when it
        returned, come back as "during" (bench/flood_latency.py times calls with it)."""
        per = max(receivers, (total // senders) // receivers * receivers)
        expect = senders * per // receivers
        phase = self.uniq("f")
        env = self.impl_env(impl)
        rx, tx = [], []
        root = queue_of_key(self.key if impl == "mipc" else self.ckey)
        try:
            for d in range(receivers):
                rx.append(Proc(self, "%s_rx%d" % (impl, d),
                               [self.bin("mipc_peer"), "recv", "%sr%d" % (phase, d), str(expect)], env, cpus=cpus))
            rx_queues = [int(p.wait_ready()[0]) for p in rx]
            for i in range(senders):
                tx.append(Proc(self, "%s_tx%d" % (impl, i),
                               [self.bin("mipc_peer"), "send", "%ss%d" % (phase, i), "%sr" % phase,
                                str(receivers), str(per), str(payload), "-"], env, cpus=cpus))
            for p in tx:
                p.wait_ready()
            pid = self.relay_pid(impl)
            # Process-wide ticks: they include threads that ended meanwhile (drainers).
            cpu0 = cpu_ticks(pid)
            sampler = Sampler(pid) if impl == "mipc" else None
            if sampler:
                sampler.start()
            for p in tx:
                p.go()
            meanwhile = None
            if during is not None:
                meanwhile = (during(), all(p.p.poll() is None for p in tx))
            for p in tx:
                p.wait(60)
            sent = [p.result() for p in tx]
            # Receivers end at their count; with losses, once every queue is drained.
            last_change, last_state = time.monotonic(), None
            while not all([p.ended() for p in rx]):
                q = sysv_queues()
                state = tuple(q.get(x, (0, 0, 0))[2] for x in [root] + rx_queues)
                if state != last_state:
                    last_state, last_change = state, time.monotonic()
                elif sum(state) == 0 and time.monotonic() - last_change > 0.3:
                    for p in rx:
                        p.close_stdin()
                if time.monotonic() - last_change > 30:
                    raise BenchError("%s flood: receivers stuck (queues %s)" % (impl, state))
                time.sleep(0.01)
            got = [p.result() for p in rx]
            cpu1 = cpu_ticks(pid)
            rss = sampler.stop() if sampler else None
        finally:
            for p in tx + rx:
                p.stop()
        n_sent = sum(r["sent"] for r in sent)
        n_err = sum(r["errors"] for r in sent)
        n_got = sum(r["got"] for r in got)
        t0 = min(r["t_start"] for r in sent)
        t1 = max([r["t_end"] for r in sent] + [r["t_last"] for r in got if r["got"]])
        secs = (t1 - t0) / 1e9
        return {
            "slowest_sender_ms": max(r["t_end"] - r["t_start"] for r in sent) / 1e6,
            "senders": senders, "receivers": receivers, "sent": n_sent, "send_errors": n_err,
            "received": n_got, "lost": n_sent - n_got, "seconds": secs,
            "handled_per_s": n_sent / secs, "delivered_per_s": n_got / secs,
            "relay_cpu_s": (cpu1 - cpu0) * TICK_NS / 1e9,
            "relay_cpu_ns_per_msg": (cpu1 - cpu0) * TICK_NS / max(1, n_sent),
            "relay_busy": (cpu1 - cpu0) * TICK_NS / 1e9 / secs,
            "relay_rss_max_kb": rss,
            "during": meanwhile,
            # Where the CPU of the senders and receivers went (their main threads).
            "peers": {role: [sum((p.sched or (float("nan"),) * 3)[k] for p in ps) for k in range(3)]
                      for role, ps in (("senders", tx), ("receivers", rx))},
        }

    def sync_tput(self, impl, callers, total, caller_env=None):
        per = max(1, total // callers)
        procs = []
        try:
            for i in range(callers):
                name = self.uniq("s")
                if impl == "mipc":
                    argv = [self.bin("mipc_peer"), "call", name, "bsrv", "100", str(per), "20", "-", "-"]
                else:
                    argv = [self.bin("rawpeer"), "call", name, "rsrv", "100", str(per), "20", "-", "-"]
                procs.append(Proc(self, "%s_sc%d" % (impl, i), argv,
                                  self.env(self.key if impl == "mipc" else self.ckey, caller_env)))
            for p in procs:
                p.wait_ready()
            pid = self.relay_pid(impl)
            cpu0 = cpu_ticks(pid)
            for p in procs:
                p.go()
            for p in procs:
                p.wait(60)
            res = [p.result() for p in procs]
            cpu1 = cpu_ticks(pid)
        finally:
            for p in procs:
                p.stop()
        calls = sum(r["n"] for r in res)
        secs = (max(r["t_end"] for r in res) - min(r["t_start"] for r in res)) / 1e9
        return {"callers": callers, "calls": calls, "seconds": secs, "calls_per_s": calls / secs,
                "relay_cpu_ns_per_call": (cpu1 - cpu0) * TICK_NS / calls}

    def throughput(self):
        # Floods, twice: with the relay alone on one CPU and the senders and receivers on
        # the other(s) (the relay never waits for work: its forwarding capacity), and with
        # every process placed by the scheduler.
        placements = []
        if len(self.all_cpus) > 1:
            placements.append(("relay_cpu", self.one_cpu, self.all_cpus - self.one_cpu,
                               FLOOD_TOTAL_SPLIT, FLOOD_REPS_SPLIT))
        placements.append(("sched", self.all_cpus, None, FLOOD_TOTAL_SCHED, 1))
        self.results["flood"] = {}
        for mode, relay_cpus, load_cpus, total, reps in placements:
            t = time.monotonic()
            self.place(relay_cpus)
            rows = []
            k = 0
            for s in FLOOD_SENDERS:
                for r in FLOOD_RECEIVERS:
                    row = {"senders": s, "receivers": r, "runs": {"mipc": [], "crelay": []}}
                    for rep in range(reps):
                        order = ["crelay", "mipc"] if k % 2 == 0 else ["mipc", "crelay"]
                        k += 1
                        for impl in order:
                            row["runs"][impl].append(self.flood(impl, s, r, self.n(total), load_cpus))
                    for impl in ("mipc", "crelay"):
                        row[impl] = max(row["runs"][impl], key=lambda x: x["handled_per_s"])
                    rows.append(row)
                    self.log("flood (%s) %2d -> %d: mipc_main %7.0f msg/s (lost %d), C loop %7.0f msg/s (lost %d)"
                             % (mode, s, r, row["mipc"]["handled_per_s"], row["mipc"]["lost"],
                                row["crelay"]["handled_per_s"], row["crelay"]["lost"]))
            self.results["flood"][mode] = rows
            self.log("floods (%s) in %.1f s" % (mode, time.monotonic() - t))
        self.place(self.all_cpus)
        t = time.monotonic()
        sync_rows = []
        k = 0
        for c in SYNC_CALLERS:
            row = {"callers": c, "runs": {"mipc": [], "crelay": []}}
            for rep in range(SYNC_REPS):
                for impl in (["crelay", "mipc"] if k % 2 == 0 else ["mipc", "crelay"]):
                    row["runs"][impl].append(self.sync_tput(impl, c, self.n(SYNC_TOTAL)))
                k += 1
            for impl in ("mipc", "crelay"):
                row[impl] = max(row["runs"][impl], key=lambda x: x["calls_per_s"])
            row["median"] = {impl: median(x["calls_per_s"] for x in row["runs"][impl]) for impl in ("mipc", "crelay")}
            sync_rows.append(row)
            self.log("sync %2d callers: mipc %7.0f calls/s, C relay %7.0f calls/s (medians; best %7.0f, %7.0f)"
                     % (c, row["median"]["mipc"], row["median"]["crelay"], row["mipc"]["calls_per_s"],
                        row["crelay"]["calls_per_s"]))
        self.results["sync_throughput"] = sync_rows
        self.log("sync throughput in %.1f s" % (time.monotonic() - t))

    # -- 2b. events: fan-out

    def fanout(self, subscribers, events):
        """One publisher, `subscribers` subscriber processes of its event; everything placed
        by the scheduler. Returns events/s (published until the last delivery), deliveries/s,
        the publisher's wall and CPU time per mipc_publish, the relay's CPU per event."""
        phase = self.uniq("e")
        env = self.env(self.key)
        subs, pub = [], None
        try:
            for d in range(subscribers):
                subs.append(Proc(self, "ev_sub%d" % d,
                                 [self.bin("event_peer"), "sub", "%ss%d" % (phase, d), "bench.*",
                                  str(events)], env))
            sub_queues = [int(p.wait_ready(timeout=60)[0]) for p in subs]
            pub = Proc(self, "ev_pub", [self.bin("event_peer"), "pub", "%sp" % phase, "bench.tick",
                                        str(events), str(EVENT_PAYLOAD), "-"], env)
            pub.wait_ready()
            pid = self.relay.pid
            cpu0 = cpu_ticks(pid)
            pub.go()
            pub.wait(120)
            sent = pub.result()
            # Subscribers end at their count; with losses, once no queue moves any more.
            queues = [queue_of_key(self.key)] + sub_queues
            last_change, last_state = time.monotonic(), None
            while any(p.p.poll() is None for p in subs):
                q = sysv_queues()
                state = tuple(q.get(x, (0, 0, 0))[2] for x in queues)
                if state != last_state:
                    last_state, last_change = state, time.monotonic()
                elif time.monotonic() - last_change > 1.0:
                    for p in subs:
                        p.close_stdin()
                if time.monotonic() - last_change > 30:
                    raise BenchError("fan-out to %d: subscribers stuck" % subscribers)
                time.sleep(0.01)
            got = [p.result() for p in subs]
            cpu1 = cpu_ticks(pid)
        finally:
            for p in subs + ([pub] if pub else []):
                p.stop()
        n = sent["sent"]
        delivered = sum(r["got"] for r in got)
        t0 = sent["t_start"]
        t1 = max([sent["t_end"]] + [r["t_last"] for r in got if r["got"]])
        secs = (t1 - t0) / 1e9
        return {
            "subscribers": subscribers, "events": n, "publish_errors": sent["errors"],
            "delivered": delivered, "lost": n * subscribers - delivered, "seconds": secs,
            "events_per_s": n / secs, "deliveries_per_s": delivered / secs,
            "publish_wall_ns": (sent["t_end"] - sent["t_start"]) / max(1, n),
            "publish_cpu_ns": sent["cpu_ns"] / max(1, n),
            "relay_cpu_ns_per_event": (cpu1 - cpu0) * TICK_NS / max(1, n),
        }

    def events(self):
        t = time.monotonic()
        rows = []
        for s in EVENT_SUBSCRIBERS:
            row = self.fanout(s, max(100, self.n(EVENT_DELIVERIES) // s))
            rows.append(row)
            self.log("fan-out to %3d: %7.0f events/s, %7.0f deliveries/s (lost %d), publisher "
                     "%.1f us wall / %.1f us CPU per event"
                     % (s, row["events_per_s"], row["deliveries_per_s"], row["lost"],
                        row["publish_wall_ns"] / 1000, row["publish_cpu_ns"] / 1000))
        self.results["events"] = rows
        self.log("events in %.1f s" % (time.monotonic() - t))

    # -- 3. cost

    def registration_and_idle(self):
        pid = self.relay.pid
        t = time.monotonic()
        reg = Proc(self, "reg1000", [self.bin("reg1000"), str(REG_ENTRIES), "benchreg"], self.env(self.key))
        try:
            reg.wait_ready(timeout=60)
            self.results["register_1000_s"] = time.monotonic() - t
            time.sleep(0.2)
            self.results["rss_1000_kb"] = status_kb(pid, "VmRSS")
            self.log("relay RSS with %d entries: %d kB" % (REG_ENTRIES, self.results["rss_1000_kb"]))
            idle = self.args.idle_seconds
            time.sleep(0.3)  # let the registration log lines and wake-ups settle
            c0, t0, x0 = cpu_ns(pid), cpu_ticks(pid), ctx_switches(pid)
            w0 = time.monotonic()
            time.sleep(idle)
            c1, t1, x1 = cpu_ns(pid), cpu_ticks(pid), ctx_switches(pid)
            self.results["idle"] = {"seconds": time.monotonic() - w0, "cpu_ns": c1 - c0,
                                    "cpu_ticks": t1 - t0, "wakeups": x1 - x0,
                                    "threads": len(tasks(pid))}
            self.log("relay idle %.0f s: %d ns CPU, %d context switches"
                     % (idle, c1 - c0, x1 - x0))
        finally:
            t = time.monotonic()
            reg.stop(timeout=30)
            self.results["unregister_1000_s"] = time.monotonic() - t

    def backlog_curve(self):
        """Issue 11 §1: what the bound of a destination's backlog costs and buys. A mipc_main
        per bound (`MIPC_BACKLOG_MAX`; 0 parks nothing, as the C loop), alone on one CPU, the
        senders and receivers on the other(s), as in the forwarding-capacity floods."""
        if len(self.all_cpus) < 2:
            self.results["backlog_curve"] = {"skipped": "one CPU only"}
            return
        t = time.monotonic()
        saved = (self.key, self.relay, self.relay_log)
        load = self.all_cpus - self.one_cpu
        rows = []
        try:
            for bound in BACKLOG_BOUNDS:
                self.key = self.pick_key()
                self.relay_log = os.path.join(self.logs, "mipc_main_backlog%d.log" % bound)
                self.relay = self.start_mipc_main(self.relay_bin, self.key, self.relay_log,
                                                  {"MIPC_BACKLOG_MAX": str(bound)})
                set_affinity(self.relay.pid, self.one_cpu)
                row = {"bound": bound, "floods": []}
                for senders, receivers in BACKLOG_FLOODS:
                    runs = [self.flood("mipc", senders, receivers, self.n(FLOOD_TOTAL_SPLIT), load)
                            for _ in range(BACKLOG_REPS)]
                    delivered, lost = pooled_delivery(runs)
                    row["floods"].append({
                        "senders": senders, "receivers": receivers,
                        "handled_per_s": max(x["handled_per_s"] for x in runs),
                        "delivered_per_s": delivered, "lost": lost,
                        "relay_cpu_ns_per_msg": median(x["relay_cpu_ns_per_msg"] for x in runs),
                    })
                rows.append(row)
                self.log("backlog bound %d: %s" % (bound, ", ".join(
                    "%d -> %d %.0f msg/s (lost %.1f %%)" % (f["senders"], f["receivers"], f["handled_per_s"],
                                                          100 * f["lost"]) for f in row["floods"])))
                self.stop_mipc_main(self.relay)
                self.relay = None
        finally:
            self.stop_mipc_main(self.relay)
            self.key, self.relay, self.relay_log = saved
        self.results["backlog_curve"] = {"rows": rows}
        self.log("backlog curve in %.1f s" % (time.monotonic() - t))

    def root_queue(self):
        """Issue 11 §3: what raising the root queue's capacity changes, measured in a private
        IPC namespace (`unshare --ipc`), where kernel.msgmnb may be set without touching the
        host's queues: the relay's root queue is made with 16 KiB, then with 256 KiB (what
        `mipc_main` sets with CAP_SYS_RESOURCE), every other queue with 16 KiB."""
        out = os.path.join(self.build, "rootq.json")
        if os.path.exists(out):
            os.unlink(out)
        argv = ["unshare", "--ipc", sys.executable, os.path.abspath(__file__), "--repo", self.repo,
                "--build", self.build, "--scale", str(self.scale), "--root-queue-probe", out]
        t = time.monotonic()
        try:
            subprocess.run(argv, check=True, timeout=300, stdout=sys.stdout, stderr=sys.stderr)
            with open(out) as f:
                self.results["root_queue"] = json.load(f)
        except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError) as e:
            self.results["root_queue"] = {"skipped": "not measured (%s)" % e}
        self.log("root queue capacity probe in %.1f s" % (time.monotonic() - t))

    def root_queue_probe(self, out_path):
        """Runs inside `unshare --ipc`: a burst and a flood with each root queue capacity."""
        mnb = "/proc/sys/kernel/msgmnb"
        res = {"senders": ROOTQ_SENDERS, "per_sender": ROOTQ_PER_SENDER, "payload": ROOTQ_PAYLOAD,
               "runs": []}
        try:
            for qbytes in ROOTQ_BYTES:
                with open(mnb, "w") as f:
                    f.write(str(qbytes))
                self.key = self.pick_key()
                self.relay_log = os.path.join(self.logs, "mipc_main_%d.log" % qbytes)
                self.relay = self.start_mipc_main(self.relay_bin, self.key, self.relay_log)
                with open(mnb, "w") as f:
                    f.write("16384")
                row = {"bytes": qbytes, "bursts": [], "floods": []}
                for _ in range(ROOTQ_REPS):
                    row["bursts"].append(self.flood("mipc", ROOTQ_SENDERS, 4, ROOTQ_SENDERS * ROOTQ_PER_SENDER,
                                                    payload=ROOTQ_PAYLOAD))
                    row["floods"].append(self.flood("mipc", 4, 4, self.n(FLOOD_TOTAL_SCHED)))
                row["slowest_sender_ms"] = median(x["slowest_sender_ms"] for x in row["bursts"])
                row["burst_lost"] = sum(x["lost"] for x in row["bursts"])
                row["flood_handled_per_s"] = median(x["handled_per_s"] for x in row["floods"])
                row["flood_lost"] = sum(x["lost"] for x in row["floods"])
                res["runs"].append(row)
                self.log("root queue %d bytes: burst slowest sender %.2f ms, flood 4 -> 4 %.0f msg/s"
                         % (qbytes, row["slowest_sender_ms"], row["flood_handled_per_s"]))
                self.stop_mipc_main(self.relay)
                self.relay.wait(timeout=10)
                self.relay = None
        finally:
            with open(mnb, "w") as f:
                f.write("16384")
        with open(out_path, "w") as f:
            json.dump(res, f)

    def sizes(self):
        out = {}
        sdir = os.path.join(self.build, "stripped")
        os.makedirs(sdir, exist_ok=True)
        for name, path in (("libmipc.so", self.lib), ("mipc_main", self.relay_bin)):
            dst = os.path.join(sdir, name)
            subprocess.run(["strip", "-o", dst, path], check=True)
            out[name] = {"stripped": os.path.getsize(dst), "unstripped": os.path.getsize(path)}
        self.results["sizes"] = out

    # -- the run

    def run(self):
        t_start = time.monotonic()
        self.results["machine"] = machine()
        self.start_relays()
        time.sleep(0.2)
        self.results["rss_idle_kb"] = status_kb(self.relay.pid, "VmRSS")
        self.start_servers()
        for step in (self.latency, self.throughput, self.events):
            step()
        self.results["rss_flood_kb"] = max(x["relay_rss_max_kb"] for rows in self.results["flood"].values()
                                           for row in rows for x in row["runs"]["mipc"])
        self.backlog_curve()
        self.root_queue()
        if not self.args.skip_idle:
            self.registration_and_idle()
        for s in list(self.servers.values()):
            s.stop()
        self.servers = {}
        self.crelay.stop()
        cres = self.crelay.result()
        self.results["crelay_counters"] = cres
        self.stop_mipc_main(self.brelay)
        self.relay.terminate()
        self.relay.wait(timeout=10)
        with open(self.relay_log) as f:
            tail = [l for l in f.read().splitlines() if "stopped" in l or "error" in l]
        self.results["relay_exit"] = {"status": self.relay.returncode, "log": tail[-3:]}
        left = [k for k in self.keys if queue_of_key(k) is not None]
        self.results["root_queues_left"] = ["%#x" % k for k in left]
        self.sizes()
        self.results["driver_seconds"] = time.monotonic() - t_start


def standalone_bench():
    """A Bench for the scripts that run one part alone (flood_check.py, calls_check.py): this
    tree's build, no docs, no baseline, no idle phase."""
    repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = argparse.Namespace(repo=repo, build=os.path.join(repo, "bench", "build"), direct_env="",
                              relay_env="", baseline=None, baseline_label=None, started_at=0.0,
                              scale=1.0, idle_seconds=0, skip_idle=True, no_docs=True,
                              root_queue_probe="")
    return Bench(args)


def stop_standalone(b, relays):
    """Ends a standalone_bench run: its peers first, then each mipc_main in `relays` (the
    processes), then the C relay and every queue left (Bench.cleanup)."""
    for p in reversed(b.procs):
        if p is not b.crelay:
            p.stop()
    for relay in relays:
        b.stop_mipc_main(relay)
    b.relay = None
    b.cleanup()


class Rendered:
    """What `report` reads of a Bench, from the results.json of an earlier run (`run`: how
    that run was made, which main() saves with the results)."""

    def __init__(self, results):
        run = results["run"]
        self.results = results
        self.direct_env = run["direct_env"]
        self.relay_env = run["relay_env"]
        self.base_dir = run["baseline_label"]
        self.base_label = run["baseline_label"]
        self.scale = run["scale"]
        self.rounds = results.get("latency_rounds", {})

    def n(self, count):
        return max(1, int(count * self.scale))


def render_again(args):
    """--from-results: rewrites docs/PERFORMANCE.md from an earlier run's results.json (after
    an edit of bench_notes.py or bench_report.py), measuring nothing; the chart stays."""
    with open(args.from_results) as f:
        results = json.load(f)
    if "run" not in results:
        print("bench: %s does not say how its run was made (written before --from-results "
              "existed): run `make bench`" % args.from_results, file=sys.stderr)
        return 2
    text = report(Rendered(results), results["run"]["total_seconds"])
    path = os.path.join(os.path.abspath(args.repo), "docs", "PERFORMANCE.md")
    with open(path, "w") as f:
        f.write(text)
    print("bench: wrote %s from %s" % (path, args.from_results))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=".", help="repository root")
    ap.add_argument("--build", default="bench/build", help="where the bench programs are")
    ap.add_argument("--direct-env", default="", help="e.g. 'MIPC_DIRECT=1': also time the sync call with this "
                    "environment (caller and server) as its own rows")
    ap.add_argument("--relay-env", default="", help="e.g. 'MIPC_POLL_US=5': environment of this tree's "
                    "mipc_main in every phase (bench.mk BENCH_RELAY_ENV)")
    ap.add_argument("--baseline", default="", help="a directory with a previous release's mipc_main, "
                    "libmipc.so and mipc_peer (bench.mk BENCH_BASELINE=REV builds it): its sync call "
                    "is timed in the same rounds as its own rows")
    ap.add_argument("--baseline-label", default="", help="what to call the baseline in the report")
    ap.add_argument("--started-at", type=float, default=0.0, help="wall-clock start of `make bench` (s since epoch)")
    ap.add_argument("--scale", type=float, default=1.0, help="scale every count (development only)")
    ap.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS)
    ap.add_argument("--skip-idle", action="store_true", help="skip the registration and idle phase")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/")
    ap.add_argument("--from-results", default="", metavar="FILE",
                    help="measure nothing: rewrite docs/PERFORMANCE.md from FILE, the results.json "
                    "of an earlier run (after an edit of bench_notes.py or bench_report.py)")
    ap.add_argument("--root-queue-probe", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.from_results:
        return render_again(args)
    if args.root_queue_probe:
        bench = Bench(args)
        try:
            bench.root_queue_probe(args.root_queue_probe)
        finally:
            bench.cleanup()
        return 0

    wall0 = time.time()
    started = args.started_at if 0 < args.started_at <= wall0 and wall0 - args.started_at < 3600 else wall0

    def on_signal(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    bench = Bench(args)
    status = 0
    try:
        bench.run()
    except (BenchError, subprocess.CalledProcessError) as e:
        print("bench: FAILED: %s" % e, file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        status = 130
    finally:
        left = bench.cleanup()
        if left:
            bench.results.setdefault("cleanup_removed", left)
    if status:
        print("bench: logs in %s; docs/PERFORMANCE.md not rewritten" % bench.logs, file=sys.stderr)
        return status
    total = time.time() - started
    bench.results["run"] = {"direct_env": bench.direct_env, "relay_env": bench.relay_env,
                            "baseline_label": bench.base_label if bench.base_dir else None,
                            "scale": args.scale, "total_seconds": total}
    if not args.no_docs:
        make_chart(bench, os.path.join(bench.perf, "sync-latency.png"), os.path.join(bench.perf, "sync-latency.csv"))
        text = report(bench, total)
        with open(os.path.join(bench.docs, "PERFORMANCE.md"), "w") as f:
            f.write(text)
        with open(os.path.join(bench.perf, "results.json"), "w") as f:
            json.dump(bench.results, f, indent=1, sort_keys=True)
            f.write("\n")
        bench.log("wrote docs/PERFORMANCE.md, docs/perf/sync-latency.png, docs/perf/results.json")
    else:
        print(report(bench, total))
    bench.log("done in %.0f s" % total)
    for t in bench.results.get("targets", []):
        bench.log("%-10s %s: %s" % ("met" if t["met"] else "NOT MET", t["target"], t["measured"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
