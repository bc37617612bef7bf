"""What bench/run_bench.py's phases and its report share: SysV and /proc helpers, the
processes the bench runs (Proc) and samples (Sampler), the machine's description, and the
statistics of several runs."""
import ctypes
import datetime
import math
import os
import platform
import subprocess
import threading
import time

LIBC = ctypes.CDLL(None, use_errno=True)
IPC_RMID = 0


class BenchError(Exception):
    """A benchmark could not run; the message says why."""


# ---------------------------------------------------------------- SysV and /proc helpers

def sysv_queues():
    """msqid -> (key, cbytes, qnum) of every queue on the system."""
    out = {}
    with open("/proc/sysvipc/msg") as f:
        next(f)
        for line in f:
            c = line.split()
            out[int(c[1])] = (int(c[0]), int(c[3]), int(c[4]))
    return out


def remove_queue(qid):
    return LIBC.msgctl(ctypes.c_int(qid), IPC_RMID, None) == 0


def queue_of_key(key):
    for qid, (k, _, _) in sysv_queues().items():
        if k == key:
            return qid
    return None


def tasks(pid):
    try:
        return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return []


def sched_fields(path):
    """The "name : value" lines of a /proc/.../sched file as a dict of strings ({} if it is
    gone)."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                fields[k.strip()] = v.strip()
    except OSError:
        pass
    return fields


def threads_sum(pid, field):
    """`field` of /proc/PID/task/*/sched summed over the threads of `pid` (threads that
    ended meanwhile count 0)."""
    total = 0.0
    for tid in tasks(pid):
        try:
            total += float(sched_fields("/proc/%d/task/%d/sched" % (pid, tid)).get(field, 0))
        except ValueError:
            pass
    return total


def cpu_ns(pid):
    """CPU time of every thread of `pid` in ns (scheduler accounting, ns resolution)."""
    return int(threads_sum(pid, "se.sum_exec_runtime") * 1e6)


TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime + stime of `pid` (all threads, also those that ended) in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def ctx_switches(pid):
    n = 0
    for tid in tasks(pid):
        try:
            with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
                for line in f:
                    if "ctxt_switches" in line:
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def last_cpu(pid):
    """The CPU thread `pid` last ran on (field 39 of /proc/PID/stat), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[36])
    except (OSError, IndexError, ValueError):
        return None


def migrations(pid):
    """se.nr_migrations summed over the threads of `pid`."""
    return int(threads_sum(pid, "se.nr_migrations"))


def set_affinity(pid, cpus):
    for tid in tasks(pid):
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass


def percentile(sorted_samples, q):
    """Nearest-rank percentile of a sorted sequence."""
    n = len(sorted_samples)
    if n == 0:
        return float("nan")
    return sorted_samples[min(n - 1, max(0, int(math.ceil(q * n)) - 1))]


# ---------------------------------------------------------------- processes

def own_group():
    """Run in a child before exec: a process group of its own, so that a Ctrl-C at the
    terminal reaches only the driver, which then stops everything in order. Not a session
    of its own: with kernel.sched_autogroup_enabled every session is a scheduling group,
    which costs each cross-group switch (pinned sync calls 8.4-8.7 us for the C relay and
    9.3 us for mipc_main with every process in its own session, 7.8-8.1 and 7.9-8.0 us in
    one) and makes the scheduler's placement swing (docs/PERFORMANCE.md)."""
    os.setpgid(0, 0)


class Proc:
    """A benchmark program; stdout/stderr go to files under the log directory."""

    def __init__(self, bench, name, argv, env, cpus=None, stdin=True):
        self.name = name
        self.out_path = os.path.join(bench.logs, name + ".out")
        self.err_path = os.path.join(bench.logs, name + ".err")
        out = open(self.out_path, "w")
        err = open(self.err_path, "w")
        def pre():
            own_group()
            if cpus:
                os.sched_setaffinity(0, cpus)

        try:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                      stdout=out, stderr=err, env=env, preexec_fn=pre)
        finally:
            out.close()
            err.close()
        bench.procs.append(self)
        # (CPU ms, voluntary switches, involuntary switches) of its main thread, read at its
        # end, before it is reaped (a zombie keeps them): see `ended`.
        self.sched = None

    @property
    def pid(self):
        return self.p.pid

    def ended(self, block=False):
        """Whether the program has ended, without reaping it (or waiting for its end, with
        `block`): the first time it finds it ended, it reads what the program used into
        `sched`, which the kernel keeps until the program is reaped."""
        if self.sched is not None or self.p.returncode is not None:
            return True
        flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
        try:
            if os.waitid(os.P_PID, self.p.pid, flags) is None:
                return False
        except ChildProcessError:
            return True
        f = sched_fields("/proc/%d/sched" % self.p.pid)
        try:
            self.sched = (float(f["se.sum_exec_runtime"]), float(f["nr_voluntary_switches"]),
                          float(f["nr_involuntary_switches"]))
        except (KeyError, ValueError):
            self.sched = (float("nan"),) * 3
        return True

    def text(self):
        try:
            with open(self.out_path) as f:
                return f.read()
        except OSError:
            return ""

    def errors(self):
        try:
            with open(self.err_path) as f:
                return f.read().strip()
        except OSError:
            return ""

    def wait_ready(self, timeout=20.0):
        """Waits for a line starting with "ready"; returns its words after "ready"."""
        end = time.monotonic() + timeout
        while True:
            for line in self.text().splitlines():
                if line.startswith("ready"):
                    return line.split()[1:]
            if self.p.poll() is not None:
                raise BenchError("%s exited (status %s) before it was ready: %s"
                                 % (self.name, self.p.returncode, self.errors() or "no message"))
            if time.monotonic() > end:
                raise BenchError("%s not ready within %.0f s: %s" % (self.name, timeout, self.errors()))
            time.sleep(0.003)

    def go(self):
        try:
            self.p.stdin.write(b"g\n")
            self.p.stdin.close()
        except (OSError, ValueError):
            pass

    def close_stdin(self):
        if self.p.stdin and not self.p.stdin.closed:
            try:
                self.p.stdin.close()
            except OSError:
                pass

    def wait(self, timeout):
        # Its end first, without reaping it (what it used is read then), in a thread of its
        # own: a blocking wait, not a poll that would take CPU from the run being measured.
        t = threading.Thread(target=self.ended, args=(True,), daemon=True)
        t.start()
        t.join(timeout)
        try:
            return self.p.wait(timeout=0 if t.is_alive() else timeout)
        except subprocess.TimeoutExpired:
            raise BenchError("%s did not finish within %.0f s" % (self.name, timeout))

    def result(self):
        """The RESULT line as a dict of ints; BenchError if the program failed."""
        rc = self.p.poll()
        for line in self.text().splitlines():
            if line.startswith("RESULT"):
                if rc not in (0, None):
                    break
                return {k: int(v) for k, v in (w.split("=", 1) for w in line.split()[1:])}
        raise BenchError("%s failed (status %s): %s" % (self.name, rc, self.errors() or "no RESULT line"))

    def stop(self, timeout=5.0):
        """Ends the program: stdin closed (its clean exit), then SIGTERM, then SIGKILL."""
        if self.p.poll() is None:
            self.close_stdin()
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.terminate()
                try:
                    self.p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self.p.kill()
                    self.p.wait()
        self.close_stdin()


class Sampler(threading.Thread):
    """Samples the relay's RSS (max VmRSS) while a flood runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.max_kb, self.halt = pid, 0, threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.max_kb = max(self.max_kb, status_kb(self.pid, "VmRSS"))
            except OSError:
                return
            self.halt.wait(0.02)

    def stop(self):
        self.halt.set()
        self.join()
        return self.max_kb


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1])

    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.splitlines()[0].strip()
        except Exception:
            return "unknown"

    def sysctl(name):
        try:
            with open("/proc/sys/kernel/" + name) as f:
                return f.read().strip()
        except OSError:
            return "?"

    return {
        "nproc": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "arch": platform.machine(),
        "mem_kb": mem,
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rustc": version(["rustc", "--version"]),
        "cc": version(["cc", "--version"]),
        "msgmnb": sysctl("msgmnb"),
        "msgmax": sysctl("msgmax"),
    }


def median(values):
    v = sorted(x for x in values if x == x)
    if not v:
        return float("nan")
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def pooled_delivery(runs):
    """Delivered msg/s and the share lost over all runs of a flood together. Which share of a
    flood is lost depends on how the receivers and senders share their CPU, which varies
    from run to run by several points: one run's figure is too noisy to compare."""
    secs = sum(x["seconds"] for x in runs)
    return (sum(x["received"] for x in runs) / secs if secs > 0 else 0.0,
            sum(x["lost"] for x in runs) / max(1, sum(x["sent"] for x in runs)))
