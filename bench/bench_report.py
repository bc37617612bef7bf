"""Writes docs/PERFORMANCE.md (and the latency chart) from what bench/run_bench.py measured:
the tables, the targets with their verdicts, and the paragraphs of bench_notes.py."""
import math
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pngchart  # noqa: E402
from bench_config import (  # noqa: E402
    LAT_ROUNDS_PINNED, LAT_ROUNDS_SCHED, LAT_WARMUP, FLOOD_TOTAL_SPLIT, FLOOD_REPS_SPLIT,
    FLOOD_TOTAL_SCHED, FLOOD_PAYLOAD, SYNC_TOTAL, EVENT_PAYLOAD, SYNC_REPS, ROOTQ_REPS,
    BACKLOG_BOUNDS, BACKLOG_FLOODS, BACKLOG_REPS, REG_ENTRIES, RSS_LIMIT_KB, LIB_LIMIT_BYTES,
    SUITE_LIMIT_S,
)
from bench_common import (  # noqa: E402
    median, pooled_delivery,
)
from bench_notes import (  # noqa: E402
    FLOOD_LOSS_TEXT, DROP_PATH_TEXT, ROOT_QUEUE_LATENCY_TEXT, BACKLOG_OWNER_TEXT,
    BACKLOG_OWNER_TABLE, BACKLOG_OWNER_AFTER, HOP_COST_TEXT, CALLS_TEXT, POLL_TEXT,
    PLACEMENT_TEXT,
)


def fmt(v, digits=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return "%.*f" % (digits, v)


def kfmt(v):
    return "{:,}".format(int(round(v))).replace(",", " ")


def verdict(ok):
    return "**met**" if ok else "**NOT met**"


def histogram_data(samples_a, samples_b, hi_us, bins=64):
    edges = [hi_us * i / bins for i in range(bins + 1)]
    width = hi_us / bins

    def count(samples):
        c = [0] * bins
        for ns in samples:
            i = int(ns / 1000.0 / width)
            c[min(i, bins - 1)] += 1
        return c

    return edges, count(samples_a), count(samples_b)


def make_chart(bench, path_png, path_csv):
    lat = bench.results["latency"]
    panels, csv_rows = [], []
    for mode, title in (("one_cpu", "SYNC CALL ROUND TRIP, 100 B, ALL PROCESSES ON ONE CPU"),
                        ("sched", "SYNC CALL ROUND TRIP, 100 B, PLACED BY THE SCHEDULER (2 CPUS)")):
        m, c = bench.lat_samples[mode]["mipc_100"], bench.lat_samples[mode]["crelay_100"]
        st, cst = lat[mode]["mipc_100"], lat[mode]["crelay_100"]
        # Range: up to the slower p99.9, but not past 4x the slower p99 (one burst of
        # outside load must not squash the whole picture into the first bins).
        top = min(max(st["p999_us"], cst["p999_us"]), 4 * max(st["p99_us"], cst["p99_us"])) * 1.1
        step = pngchart.nice_step(top, 8)
        hi = math.ceil(top / step) * step
        edges, hm, hc = histogram_data(m, c, hi)
        panels.append({
            "title": title,
            "edges": edges,
            "bars": ("MIPC-RS (%d CALLS)" % len(m), pngchart.BLUE, hm),
            "outline": ("MINIMAL C RELAY (%d)" % len(c), pngchart.ORANGE, hc),
            "markers": [("MIPC-RS P50 %s" % fmt(st["p50_us"]), st["p50_us"], pngchart.RED),
                        ("MIPC-RS P99 %s" % fmt(st["p99_us"]), st["p99_us"], pngchart.GREEN),
                        ("C RELAY P50 %s" % fmt(cst["p50_us"]), cst["p50_us"], pngchart.ORANGE)],
            "xlabel": "ROUND TRIP, MICROSECONDS (LAST BIN: THAT AND MORE)",
            "ylabel": "CALLS (LOG)",
        })
        for i in range(len(hm)):
            csv_rows.append("%s,%.3f,%.3f,%d,%d" % (mode, edges[i], edges[i + 1], hm[i], hc[i]))
    pngchart.histogram_chart(path_png, panels)
    with open(path_csv, "w") as f:
        f.write("mode,bin_from_us,bin_to_us,mipc_sync_100B,minimal_c_relay_100B\n")
        f.write("\n".join(csv_rows) + "\n")


LABELS = {
    "floor": "floor: raw SysV ping-pong, 2 processes (2 hops)",
    "crelay": "minimal C relay, raw C peers (4 hops)",
    "mipc": "**mipc-rs sync call** via mipc_main (4 hops: a lone caller)",
    "direct": "**mipc-rs sync call, direct path** (%s)",
    "base": "mipc-rs %s (previous release) via its mipc_main (4 hops)",
}


def wrap(text, width=92):
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = (line + " " + word) if line else word
    if line:
        out.append(line)
    return out


def round_median(bench, mode, name):
    """The median of the per-round p50s of variant `name` in placement `mode`."""
    return median(x["p50_us"] for x in bench.rounds.get(mode, {}).get(name, []))


def target_rows(w, targets):
    """Writes the rows of a targets table; returns them as results.json keeps them."""
    for name, value, ok in targets:
        w("| %s | %s | %s |" % (name, value, verdict(ok)))
    return [{"target": n, "measured": v, "met": ok} for n, v, ok in targets]


def run_range(values):
    """'a to b %' of the values of several runs (one decimal)."""
    return "%.1f to %.1f %%" % (min(values), max(values)) if values else "n/a"


def issue11_targets(bench):
    """Each target of issue 11 with this run's figures: (target, measured, met)."""
    r = bench.results
    one = r["latency"]["one_cpu"]
    out = []
    for size in (100, 2048):
        a, b = one["mipc_%d" % size]["p50_us"], one["crelay_%d" % size]["p50_us"]
        out.append(("0: pinned sync p50 <= 1.1x minimal C relay (%d B, pooled rounds)" % size,
                    "%s / %s us = %.2fx" % (fmt(a), fmt(b), a / b), a / b <= 1.1))
    a, b = round_median(bench, "one_cpu", "synccall_100"), round_median(bench, "one_cpu", "crelay_100")
    out.append(("0: pinned sync p50 <= 1.1x minimal C relay, independent client `bench/synccall.c` "
                "(100 B, median of the rounds' p50s)", "%s / %s us = %.2fx" % (fmt(a), fmt(b), a / b), a / b <= 1.1))
    if "direct_100" in one:
        a, b = one["direct_100"]["p50_us"], one["floor_100"]["p50_us"]
        out.append(("0: direct path p50 <= 1.15x raw SysV ping-pong (100 B, one CPU)",
                    "%s / %s us = %.2fx" % (fmt(a), fmt(b), a / b), a / b <= 1.15))
    if "relay_cpu" in r["flood"]:
        for x in r["flood"]["relay_cpu"]:
            m, c = x["mipc"], x["crelay"]
            q = m["handled_per_s"] / c["handled_per_s"]
            (dm, lm), (dc, lc) = pooled_delivery(x["runs"]["mipc"]), pooled_delivery(x["runs"]["crelay"])
            met = q >= 0.9 and dm >= dc and lm <= lc
            # Lost is the noisiest figure: each relay's own runs, to read a difference against.
            spread = {impl: [100.0 * y["lost"] / max(1, y["sent"]) for y in x["runs"][impl]]
                      for impl in ("mipc", "crelay")}
            width = max(max(v) - min(v) for v in spread.values())
            # Lost is 1 - delivered / handled: at the same delivered, a higher handled loses a
            # larger share (see "Why a faster relay loses a larger share").
            from_handled = lm > lc and q > 1 and dm >= 0.99 * dc
            note = ""
            if from_handled:
                note = ("; delivered %.1f %% and handled %.0f %% of the C loop's: the larger share "
                        "lost comes from the higher handled" % (100 * dm / dc, 100 * q))
            elif dm < dc:
                note = "; delivered %.1f %% of the C loop's%s" % (100 * dm / dc, ", losing no more"
                                                                  if lm <= lc else "")
            if not from_handled and lm > lc and 100 * (lm - lc) <= width:
                note += ("; lost %.1f points apart, less than the %.1f points between one relay's own "
                         "runs" % (100 * (lm - lc), width))
            out.append(("1: flood %d -> %d handled >= 90 %% of the bare C loop (best run), delivered and lost "
                        "no worse (the %d runs of each pooled)" % (x["senders"], x["receivers"], len(x["runs"]["mipc"])),
                        "%s / %s msg/s = %.0f %%; delivered %s / %s msg/s; lost %.1f %% / %.1f %% (runs %s / %s)%s"
                        % (kfmt(m["handled_per_s"]), kfmt(c["handled_per_s"]), 100 * q, kfmt(dm), kfmt(dc),
                           100 * lm, 100 * lc, run_range(spread["mipc"]), run_range(spread["crelay"]), note),
                        met))
    n = len(bench.rounds.get("sched", {}).get("mipc_100", []))
    a, b = round_median(bench, "sched", "mipc_100"), round_median(bench, "sched", "crelay_100")
    out.append(("2: scheduler-placed sync p50 <= 1.2x minimal C relay (100 B, median of %d "
                "interleaved rounds' p50s)" % n, "%s / %s us = %.2fx" % (fmt(a), fmt(b), a / b), a / b <= 1.2))
    for x in r["sync_throughput"]:
        a, b = x["median"]["mipc"], x["median"]["crelay"]
        ba, bb = x["mipc"]["calls_per_s"], x["crelay"]["calls_per_s"]
        # Each mipc run beside the C relay's run next to it (the runs alternate): a ratio that
        # drifts in the machine's load touches both alike.
        paired = median(m["calls_per_s"] / c["calls_per_s"] for m, c in zip(x["runs"]["mipc"], x["runs"]["crelay"]))
        out.append(("2: sync calls/s with %d concurrent callers >= minimal C relay (median of %d "
                    "alternated runs)" % (x["callers"], len(x["runs"]["mipc"])),
                    "%s / %s calls/s = %.0f %% (median of the paired runs' ratios %.0f %%; best runs "
                    "%s / %s = %.0f %%)"
                    % (kfmt(a), kfmt(b), 100 * a / b, 100 * paired, kfmt(ba), kfmt(bb), 100 * ba / bb), a >= b))
    bq = r.get("root_queue")
    if bq and bq.get("runs"):
        small, big = bq["runs"][0], bq["runs"][-1]
        out.append(("3: root queue raised to %s bytes (burst of %d senders x %d messages of %d B): "
                    "slowest sender no slower than with %s bytes"
                    % (kfmt(big["bytes"]), bq["senders"], bq["per_sender"], bq["payload"], kfmt(small["bytes"])),
                    "%.2f / %.2f ms" % (big["slowest_sender_ms"], small["slowest_sender_ms"]),
                    big["slowest_sender_ms"] <= small["slowest_sender_ms"]))
    elif bq:
        out.append(("3: root queue capacity (burst measurement)", bq.get("skipped", "not run"), False))
    return out


def placement_section(bench, w):
    """The per-round figures of the scheduler's placement and what they show (issue 11 §2)."""
    rounds = bench.rounds.get("sched", {})
    names = [n for n in ("crelay_100", "mipc_100", "synccall_100", "direct_100") if rounds.get(n)]
    if not names:
        return
    w("")
    w("### Where the scheduler-placement gap comes from")
    w("")
    for line in wrap(
            "Each round of the scheduler's placement below: the round's p50, and the share of 2 ms "
            "samples during the round in which the caller, the relay's receive thread and the server "
            "had all last run on the same CPU (*together*), with the migrations of the relay's and "
            "server's threads in the round. Rounds are interleaved, so every variant meets the same "
            "outside load."):
        w(line)
    w("")
    w("| variant | " + " | ".join("round %d" % (i + 1) for i in range(len(rounds[names[0]]))) + " | median p50 |")
    w("|---|" + "---:|" * (len(rounds[names[0]]) + 1))
    for n in names:
        cells = []
        for x in rounds[n]:
            pl = x["placement"] or {}
            tog = pl.get("colocated", float("nan"))
            cells.append("%s us, %s together, %s migr." % (fmt(x["p50_us"]),
                         "%.0f %%" % (100 * tog) if tog == tog else "?", pl.get("migrations", "?")))
        w("| %s | %s | %s us |" % (n.replace("_100", " 100 B"), " | ".join(cells), fmt(round_median(bench, "sched", n))))
    w("")
    for line in wrap(PLACEMENT_TEXT):
        w(line)
    w("")
    w("### Polling before sleeping (`mipc_main -p`)")
    w("")
    for line in wrap(POLL_TEXT):
        w(line)


def section_results(bench, w, key, field, title):
    """Writes the title of a section measured by phase `key`; returns the phase's results,
    or None (saying so under the title) when the run has no `field` in them."""
    res = bench.results.get(key) or {}
    w("")
    w("### " + title)
    w("")
    if not res.get(field):
        w("Not measured in this run: %s." % res.get("skipped", "no result"))
        return None
    return res


def backlog_section(bench, w):
    bc = section_results(bench, w, "backlog_curve", "rows", "Backlog bound (`MIPC_BACKLOG_MAX`)")
    if bc is None:
        return
    for line in wrap(
            "What the backlog costs and buys: a `mipc_main` started with each bound on the messages "
            "parked per destination (0 parks nothing: a message for a full queue is dropped at once, "
            "as the bare C loop does), alone on one CPU, the senders and receivers on the other, "
            "%s messages of 100 bytes per flood, %d runs per flood and bound (handled: the best "
            "run; delivered and lost: the runs pooled). The bare C loop's row is the forwarding "
            "capacity table's (best of its runs; delivered and lost pooled)."
            % (kfmt(bench.n(FLOOD_TOTAL_SPLIT)), BACKLOG_REPS)):
        w(line)
    w("")
    heads = ["%d -> %d" % (s, r) for s, r in BACKLOG_FLOODS]
    w("| bound | " + " | ".join("%s handled | delivered | lost | relay CPU per msg" % h for h in heads) + " |")
    w("|---:|" + "---:|---:|---:|---:|" * len(heads))
    for row in bc["rows"]:
        cells = []
        for f in row["floods"]:
            cells.append("%s | %s | %.1f %% | %.2f us" % (kfmt(f["handled_per_s"]), kfmt(f["delivered_per_s"]),
                                                         100 * f["lost"], f["relay_cpu_ns_per_msg"] / 1000))
        w("| %s | %s |" % (kfmt(row["bound"]), " | ".join(cells)))
    ref = {(x["senders"], x["receivers"]): x for x in bench.results["flood"].get("relay_cpu", [])}
    if all(k in ref for k in BACKLOG_FLOODS):
        cells = []
        for k in BACKLOG_FLOODS:
            c = ref[k]
            d, l = pooled_delivery(c["runs"]["crelay"])
            cells.append("%s | %s | %.1f %% | %.2f us" % (kfmt(c["crelay"]["handled_per_s"]), kfmt(d), 100 * l,
                                                         c["crelay"]["relay_cpu_ns_per_msg"] / 1000))
        w("| bare C loop | %s |" % " | ".join(cells))
    w("")
    # The N -> 1 flood of this run in numbers: the share lost follows handled, not delivered.
    if (4, 1) in ref and bc["rows"]:
        i = BACKLOG_FLOODS.index((4, 1))
        c = ref[(4, 1)]
        cd, cl = pooled_delivery(c["runs"]["crelay"])
        ch = c["crelay"]["handled_per_s"]
        parts = []
        for row in bc["rows"]:
            f = row["floods"][i]
            parts.append("bound %s handled %.0f %% and delivered %.0f %% of the C loop's, lost %.1f %%"
                         % (kfmt(row["bound"]), 100 * f["handled_per_s"] / ch,
                            100 * f["delivered_per_s"] / cd if cd else 0, 100 * f["lost"]))
        for line in wrap("In the 4 -> 1 flood of this run (the C loop lost %.1f %%): %s. Where "
                         "the receiver cannot keep up, the share lost follows the handled rate "
                         "(see \"Why a faster relay loses a larger share\" above)."
                         % (100 * cl, "; ".join(parts))):
            w(line)
        w("")
    for line in wrap(
            "The default bound stays %s. The backlog is what keeps sync calls from failing when "
            "more requests reach a server than its queue holds (16 callers sending 2 KiB "
            "requests to one server whose queue holds 16 KiB: the relay tests' overload "
            "scenario), and what lets a receiver that falls behind for a moment catch up without "
            "losing anything. Under a flood that outlasts it, the larger the bound, the less is "
            "lost and the more the relay spends per message (the parking, and the sends of what "
            "it kept), so the slower it takes the senders' messages where the receiver cannot "
            "keep up: the curve above. The bound is the point of least loss, which is what a "
            "daemon's owner asks of a bus; with 0 the relay behaves as the C loop (and beats its "
            "rate), for firmware that prefers that."
            % kfmt(BACKLOG_BOUNDS[-1])):
        w(line)


def root_queue_section(bench, w):
    rq = section_results(bench, w, "root_queue", "runs",
                         "Root queue capacity (`mipc_main -q`, `MIPC_ROOT_QUEUE_BYTES`)")
    if rq is None:
        return
    for line in wrap(
            "`mipc_main` raises its root queue's `msg_qbytes` to 256 KiB when it has CAP_SYS_RESOURCE "
            "(the default; 0 keeps `kernel.msgmnb`). Measured in a private IPC namespace (`unshare "
            "--ipc`, so the host's limit stays), with the root queue made at each capacity and every "
            "other queue at 16 KiB. *Burst*: %d sender processes each send %d async messages of %d "
            "bytes at once to 4 receivers (scheduler's placement); the figure is the slowest "
            "sender's time for its %d sends, median of %d bursts. *Flood*: 4 -> 4 as above, "
            "%s messages of 100 bytes."
            % (rq["senders"], rq["per_sender"], rq["payload"], rq["per_sender"], ROOTQ_REPS,
               kfmt(bench.n(FLOOD_TOTAL_SCHED)))):
        w(line)
    w("")
    w("| root queue | burst: slowest sender | burst lost | flood 4 -> 4 handled msg/s | flood lost |")
    w("|---:|---:|---:|---:|---:|")
    for x in rq["runs"]:
        w("| %s bytes | %.2f ms | %d | %s | %d |" % (kfmt(x["bytes"]), x["slowest_sender_ms"], x["burst_lost"],
                                                  kfmt(x["flood_handled_per_s"]), x["flood_lost"]))
    w("")
    for line in wrap(ROOT_QUEUE_LATENCY_TEXT):
        w(line)


def report(bench, total_seconds):
    r = bench.results
    m = r["machine"]
    lat = r["latency"]
    direct = bool(bench.direct_env)
    direct_label = " ".join("%s=%s" % kv for kv in bench.direct_env.items())
    base = bool(bench.base_dir)
    L = []
    w = L.append
    w("# mipc-rs performance")
    w("")
    w("<!-- Generated by bench/run_bench.py (`make bench`); every edit here is overwritten. -->")
    w("")
    w("A sync MIPC call crosses four queue hops (caller -> relay -> server -> relay -> caller);")
    w("between mipc-rs peers, while several callers share the relay, the server answers straight")
    w("to the caller's queue and a call crosses three (docs/PROTOCOL.md §11); a raw two-process SysV")
    w("ping-pong crosses two. This page measures where mipc-rs stands against that floor and")
    w("against a minimal blocking relay written in C with MIPC's four hops (no library, no")
    w("checks: the original design's own floor on this machine). Every figure below comes from one run")
    w("of `make bench`, and every ratio compares figures of that same run, so the ratios hold")
    w("even on a noisy machine where the absolute figures move from run to run.")
    w("")
    w("## Machine and run")
    w("")
    w("| | |")
    w("|---|---|")
    w("| CPUs (nproc) | %s (%s usable by the run) |" % (m["nproc"], m["cpus_allowed"]))
    w("| CPU model | %s |" % m["cpu_model"])
    w("| kernel | Linux %s (%s) |" % (m["kernel"], m["arch"]))
    w("| memory | %.1f GiB |" % (m["mem_kb"] / 1048576.0))
    w("| SysV limits | msgmnb %s bytes, msgmax %s bytes |" % (m["msgmnb"], m["msgmax"]))
    w("| load average at start | %s |" % " ".join(m["loadavg_at_start"]))
    w("| toolchain | %s; %s |" % (m["rustc"], m["cc"]))
    w("| date | %s |" % m["date"])
    w("| command | `make bench` (or `make -f bench/bench.mk bench`)%s%s |"
      % ("; this run: `make bench BENCH_DIRECT=1`" if direct else "",
         "; mipc_main run with %s (`BENCH_RELAY_ENV`)" % " ".join("%s=%s" % kv for kv in bench.relay_env.items())
         if bench.relay_env else ""))
    w("| duration | %.0f s in all (build included), %.0f s of measuring |" % (total_seconds, r["driver_seconds"]))
    w("")
    w("## Targets")
    w("")
    w("| target | measured | |")
    w("|---|---|---|")
    targets = []
    one = lat["one_cpu"]
    for size in (100, 2048):
        a, b = one["mipc_%d" % size], one["crelay_%d" % size]
        q = a["p50_us"] / b["p50_us"]
        targets.append(("sync call p50 <= 1.15x minimal C relay p50 (%d B, one CPU)" % size,
                        "%s / %s us = %.2fx" % (fmt(a["p50_us"]), fmt(b["p50_us"]), q), q <= 1.15))
        q = a["p99_us"] / b["p99_us"]
        targets.append(("sync call p99 <= 1.5x minimal C relay p99 (%d B, one CPU)" % size,
                        "%s / %s us = %.2fx" % (fmt(a["p99_us"]), fmt(b["p99_us"]), q), q <= 1.5))
    if direct:
        a, b = one["direct_100"], one["floor_100"]
        q = a["p50_us"] / b["p50_us"]
        targets.append(("direct-path sync call p50 <= 1.3x floor p50 (100 B, one CPU)",
                        "%s / %s us = %.2fx" % (fmt(a["p50_us"]), fmt(b["p50_us"]), q), q <= 1.3))
    if base:
        for size in (100, 2048):
            a, b = one["mipc_%d" % size], one["base_%d" % size]
            q = a["p50_us"] / b["p50_us"]
            targets.append(("sync call p50 <= 1.05x the previous release's (%s, %d B, one CPU)"
                            % (bench.base_label, size),
                            "%s / %s us = %.2fx" % (fmt(a["p50_us"]), fmt(b["p50_us"]), q), q <= 1.05))
    cap_mode = "relay_cpu" if "relay_cpu" in r["flood"] else "sched"
    fl = r["flood"][cap_mode]
    tot_m = sum(x["mipc"]["sent"] for x in fl) / sum(x["mipc"]["seconds"] for x in fl)
    tot_c = sum(x["crelay"]["sent"] for x in fl) / sum(x["crelay"]["seconds"] for x in fl)
    targets.append(("relay forwarding rate >= 80 %% of the bare C loop (six floods together, %s)"
                    % ("relay on its own CPU" if cap_mode == "relay_cpu" else "scheduler's placement"),
                    "%s / %s msg/s = %.0f %%" % (kfmt(tot_m), kfmt(tot_c), 100 * tot_m / tot_c),
                    tot_m >= 0.8 * tot_c))
    if "idle" in r:
        i = r["idle"]
        targets.append(("relay CPU while idle = 0 (no polling)",
                        "%d ns CPU, %d wake-ups in %.0f s" % (i["cpu_ns"], i["wakeups"], i["seconds"]),
                        i["cpu_ns"] == 0 and i["wakeups"] == 0))
        targets.append(("relay RSS < 4 MB with 1 000 entries", "%s kB" % kfmt(r["rss_1000_kb"]),
                        r["rss_1000_kb"] < RSS_LIMIT_KB))
    lib = r["sizes"]["libmipc.so"]["stripped"]
    targets.append(("`libmipc.so` stripped < 600 KB (x86_64)", "%s bytes (%.0f KB)" % (kfmt(lib), lib / 1024.0),
                    lib < LIB_LIMIT_BYTES))
    targets.append(("`make bench` < 3 minutes", "%.0f s" % total_seconds, total_seconds < SUITE_LIMIT_S))
    r["targets"] = target_rows(w, targets)
    w("")
    w("### Targets of issue 11 (under load and overload)")
    w("")
    w("| target | measured | |")
    w("|---|---|---|")
    r["targets_issue11"] = target_rows(w, issue11_targets(bench))
    w("")
    w("## Sync-call latency")
    w("")
    w("Round trip of one call, in microseconds, measured by the caller around each call")
    w("(`mipc_send_sync_msg(dst, api, in, size, out, size, -1)` for mipc-rs; `msgsnd` + `msgrcv`")
    w("for the raw C programs). The server answers with the request's payload, so the payload")
    w("crosses every hop in both directions. Each message is the SPEC §2 bytes (76-byte header +")
    w("payload; mipc-rs adds its 4-byte call tag), the floor included. The variants run in")
    w("interleaved rounds (%d on one CPU, %d placed by the scheduler; a new caller process each"
      % (LAT_ROUNDS_PINNED, LAT_ROUNDS_SCHED))
    w("round, %d untimed warm-up calls) and the rounds are pooled." % LAT_WARMUP)
    w("")
    w("Two placements: **one CPU** pins every process of a benchmark (caller, relay, server) to")
    w("the same CPU, which measures the software path (system calls, copies, context switches)")
    w("and is stable from run to run: the targets use it. **Scheduler** lets Linux place them on")
    w("both CPUs: on this virtual machine a wake-up on the other CPU costs tens of microseconds")
    w("(compare the 2-process floor in both tables), which swamps the software cost. Whether a")
    w("hop stays on its CPU depends on where the long-lived relay and server happen to sit, so")
    w("those figures, and their ratios, move a lot between runs: the same variant's p50 can be")
    w("three times higher in the next run (either relay), depending on whether its hops mostly")
    w("stayed on one CPU. Read this table as what a call costs on this machine, not as a")
    w("comparison of the software.")
    for mode, title in (("one_cpu", "One CPU"), ("sched", "Scheduler's placement (2 CPUs)")):
        st = lat[mode]
        w("")
        w("### %s" % title)
        w("")
        w("| benchmark | payload | calls | p50 us | p99 us | p99.9 us | p50 / floor | p99 / floor | p50 / C relay | p99 / C relay |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind in ("floor", "crelay", "mipc") + (("direct",) if direct else ()) + (("base",) if base else ()):
            for size in (100, 2048):
                s = st["%s_%d" % (kind, size)]
                f, c = st["floor_%d" % size], st["crelay_%d" % size]
                label = LABELS[kind] % (direct_label if kind == "direct" else bench.base_label) \
                    if kind in ("direct", "base") else LABELS[kind]
                rel_c = ("%.2fx" % (s["p50_us"] / c["p50_us"]), "%.2fx" % (s["p99_us"] / c["p99_us"])) \
                    if kind in ("mipc", "direct", "base") else ("", "")
                rel_f = ("%.2fx" % (s["p50_us"] / f["p50_us"]), "%.2fx" % (s["p99_us"] / f["p99_us"])) \
                    if kind != "floor" else ("1x", "1x")
                w("| %s | %d B | %s | %s | %s | %s | %s | %s | %s | %s |"
                  % (label, size, kfmt(s["n"]), fmt(s["p50_us"]), fmt(s["p99_us"]), fmt(s["p999_us"]),
                     rel_f[0], rel_f[1], rel_c[0], rel_c[1]))
    placement_section(bench, w)
    w("")
    w("![Sync-call latency histogram](perf/sync-latency.png)")
    w("")
    w("The histogram (log count scale) shows the mipc-rs sync call (bars) over the minimal C")
    w("relay (line) for 100-byte payloads, in both placements; the bin counts are in")
    w("[perf/sync-latency.csv](perf/sync-latency.csv) and every figure of this page in")
    w("[perf/results.json](perf/results.json).")
    w("")
    w("## Throughput")
    w("")
    w("### Async messages")
    w("")
    w("`mipc_send_msg(src, dst, api, in, %d, 0)` from each sender process (each registered with" % FLOOD_PAYLOAD)
    w("`mipc_init`) to the receivers in turn; each receiver process loops on `mipc_mq_receive`.")
    w("The same programs run through `mipc_main` and through the bare C forwarding loop")
    w("(`bench/crelay.c`: one thread, blocking `msgrcv` -> name lookup -> `msgsnd`, the most a")
    w("one-thread relay can do; the library talks to it with `MIPC_LEGACY_WIRE=1`), alternated.")
    w("Neither relay blocks its receive loop on a full destination queue: the C loop drops the")
    w("message at once (`IPC_NOWAIT`); `mipc_main` parks a bounded backlog per destination, sent")
    w("as room frees, and drops past that bound. So when a receiver falls behind (its")
    w("queue holds %s bytes), messages can be lost: *handled* is what the relay took off its root"
      % r["machine"]["msgmnb"])
    w("queue per second (the senders block on the full root queue, so when the relay is the")
    w("bottleneck this is its forwarding rate), *delivered* what reached the receivers, *relay")
    w("busy* its CPU time over the flood's wall time (near 100 %: the relay is the bottleneck;")
    w("`mipc_main` can pass 100 % when its drainer thread runs beside its main loop).")
    w("Time runs from the common start (all senders registered, then released together) to the")
    w("last send or receive.")
    w("")
    for line in wrap(
            "Read *handled* next to *delivered* and *lost*: when a receiver falls behind, the C "
            "loop throws away what does not fit its queue at the cost of one failed `msgsnd`, "
            "while `mipc_main` keeps up to 1 024 messages per destination (2 MiB in all) and "
            "sends them as room frees, before each new message to that destination and from its "
            "drainer thread (\"Who sends a backlog\" below), and drops past that bound. Since "
            "7dc5c4f it sends a backlog's one-way requests in batches: as many of one SysV type "
            "as fit one message (up to 2 048 bytes of them), which the receiver's library takes "
            "apart (docs/PROTOCOL.md section 10). A receiver that falls behind then reads about "
            "ten 100-byte messages per `msgrcv` instead of one, and `msgrcv` costs about the "
            "same whatever the size (0.67 us for 100 bytes, 0.73 us for 1 600: "
            "`bench/build/queue_costs`); after a batch found the queue full, the relay asks the "
            "queue's room (`msgctl(IPC_STAT)`, 0.40 us) instead of trying a `msgsnd` that copies "
            "the batch in before it finds no room (1.13 us). So where a receiver cannot keep up "
            "(the `4 -> 1`, `16 -> 1` and `16 -> 4` floods) it reads 2 to 3 times faster, and "
            "mipc_main both handles more than the C loop and loses far less. The second, "
            "independent check of these figures, `python3 bench/flood_check.py --reps 4 --peers "
            "--other-relay PATH` (the floods alone, 4 alternated runs of each relay; PATH "
            "46a202f's mipc_main, the build before batches, built in a git worktree), at "
            "7dc5c4f, floods 1 -> 1, 1 -> 4, 4 -> 1, 4 -> 4, 16 -> 1, 16 -> 4: handled 102, "
            "103, 119, 106, 132 and 113 % of the C loop's rate (46a202f: 100, 103, 99, 96, 107 "
            "and 96 %); delivered 125, 102, 268, 116, 324 and 265 % of the C loop's (46a202f: "
            "126, 100, 100, 110, 104 and 99 %); lost 6.6, 0.0, 4.7, 0.4, 72.3 and 13.8 % "
            "against the C loop's 24.6, 0.0, 58.5, 9.4, 88.7 and 63.4 % (46a202f: 1.5, 0.0, "
            "58.5, 0.2, 88.4 and 60.3 %). The receivers spent 0.32, 0.31 and 0.37 us per "
            "message received in the three floods to receivers that cannot keep up, against "
            "the C loop's 0.90, 1.01 and 1.03 us and 46a202f's 0.95, 1.01 and 1.06 us. "
            "In 1 -> 1, where the receiver nearly keeps up, mipc_main lost 1.0 to 11.6 % per "
            "run (46a202f 0.0 to 3.9 %): it handled more (102 against 100 %) and delivered the "
            "same (459 against 462 thousand messages a second), which is the line of the next "
            "paragraph."):
        w(line)
    w("")
    for line in wrap(FLOOD_LOSS_TEXT):
        w(line)
    w("")
    for line in wrap(DROP_PATH_TEXT):
        w(line)
    w("")
    for line in wrap(BACKLOG_OWNER_TEXT):
        w(line)
    w("")
    for line in BACKLOG_OWNER_TABLE:
        w(line)
    w("")
    for line in wrap(BACKLOG_OWNER_AFTER):
        w(line)
    for mode, title, text in (
            ("relay_cpu", "Relay on its own CPU (forwarding capacity)",
             "The relay (either one) is alone on one CPU, senders and receivers share the other: "
             "the relay always has work waiting, so *handled* is its forwarding capacity. "
             "%s messages per flood, each flood %d times (alternated), the best run (by handled) "
             "shown. The forwarding-rate target uses this table; the issue-11 targets compare "
             "handled in the best run and delivered and lost over all the runs pooled, because "
             "the share lost moves by several points from run to run." % (kfmt(bench.n(FLOOD_TOTAL_SPLIT)), FLOOD_REPS_SPLIT)),
            ("sched", "Scheduler's placement",
             "Every process placed by Linux on both CPUs, %s messages per flood. The relay often "
             "sleeps and is woken from the other CPU (slow on this VM), so these rates swing from "
             "run to run; they show what the whole machine does, not what the relay can do."
             % kfmt(bench.n(FLOOD_TOTAL_SCHED)))):
        if mode not in r["flood"]:
            continue
        rows = r["flood"][mode]
        w("")
        w("#### %s" % title)
        w("")
        for line in wrap(text):
            w(line)
        w("")
        w("| senders -> receivers | mipc_main handled msg/s | delivered | lost | relay busy | C loop handled msg/s | delivered | lost | relay busy | handled: mipc / C | relay CPU per msg: mipc / C |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in rows:
            a, b = x["mipc"], x["crelay"]
            w("| %d -> %d | %s | %s | %.1f %% | %.0f %% | %s | %s | %.1f %% | %.0f %% | %.0f %% | %.2f / %.2f us |"
              % (x["senders"], x["receivers"], kfmt(a["handled_per_s"]), kfmt(a["delivered_per_s"]),
                 100.0 * a["lost"] / max(1, a["sent"]), 100 * a["relay_busy"],
                 kfmt(b["handled_per_s"]), kfmt(b["delivered_per_s"]),
                 100.0 * b["lost"] / max(1, b["sent"]), 100 * b["relay_busy"],
                 100 * a["handled_per_s"] / b["handled_per_s"],
                 a["relay_cpu_ns_per_msg"] / 1000, b["relay_cpu_ns_per_msg"] / 1000))
        tm = sum(x["mipc"]["sent"] for x in rows) / sum(x["mipc"]["seconds"] for x in rows)
        tc = sum(x["crelay"]["sent"] for x in rows) / sum(x["crelay"]["seconds"] for x in rows)
        w("| **all six** | **%s** | | | | **%s** | | | | **%.0f %%** | |" % (kfmt(tm), kfmt(tc), 100 * tm / tc))
    backlog_section(bench, w)
    root_queue_section(bench, w)
    w("")
    w("### Sync calls")
    w("")
    w("Concurrent caller processes, each making sync calls (100 B each way) to the one server")
    w("(one server thread, as in MIPC: calls to a process are served one at a time), started")
    w("together, placed by the scheduler; %s calls per run, %d runs per row (alternated): the"
      % (kfmt(bench.n(SYNC_TOTAL)), SYNC_REPS))
    w("median run and the best (mipc_main's CPU per call: its best run's).")
    w("")
    w("| callers | mipc-rs calls/s, median | C relay, median | mipc / C, median | mipc-rs, best | C relay, best "
      "| mipc / C, best | mipc_main CPU per call |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for x in r["sync_throughput"]:
        a, b = x["mipc"], x["crelay"]
        ma, mb = x["median"]["mipc"], x["median"]["crelay"]
        w("| %d | %s | %s | %.0f %% | %s | %s | %.0f %% | %.1f us |"
          % (x["callers"], kfmt(ma), kfmt(mb), 100 * ma / mb, kfmt(a["calls_per_s"]), kfmt(b["calls_per_s"]),
             100 * a["calls_per_s"] / b["calls_per_s"], a["relay_cpu_ns_per_call"] / 1000))
    w("")
    w(CALLS_TEXT)
    w("")
    if r.get("events"):
        w("### Events: fan-out")
        w("")
        w("One publisher process publishes events of %d bytes as fast as `mipc_publish` returns;"
          % EVENT_PAYLOAD)
        w("N subscriber processes (pattern `bench.*`) receive them with `mipc_mq_receive`; the relay")
        w("receives each event once and sends one copy per subscriber. Every process is placed by")
        w("the scheduler. Events/s count from the first publish to the last delivery; the")
        w("publisher's cost is its own wall and CPU time per `mipc_publish` (one `msgsnd` to the")
        w("root queue, whatever N: it blocks only while the root queue is full).")
        w("")
        w("| subscribers | events | events/s | deliveries/s | lost | publisher wall per event | publisher CPU per event | relay CPU per event |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in r["events"]:
            w("| %d | %s | %s | %s | %d | %.1f us | %.1f us | %.1f us |"
              % (x["subscribers"], kfmt(x["events"]), kfmt(x["events_per_s"]),
                 kfmt(x["deliveries_per_s"]), x["lost"], x["publish_wall_ns"] / 1000,
                 x["publish_cpu_ns"] / 1000, x["relay_cpu_ns_per_event"] / 1000))
        w("")
    w("## Cost")
    w("")
    w("| | mipc-rs | reference |")
    w("|---|---:|---:|")
    for mode, what in (("relay_cpu", "relay on its own CPU"), ("sched", "scheduler's placement")):
        if mode not in r["flood"]:
            continue
        rows = r["flood"][mode]
        cm = sum(x["mipc"]["relay_cpu_s"] for x in rows) / sum(x["mipc"]["sent"] for x in rows) * 1e9
        cc = sum(x["crelay"]["relay_cpu_s"] for x in rows) / sum(x["crelay"]["sent"] for x in rows) * 1e9
        w("| relay CPU per forwarded message (floods, %s) | %.2f us | %.2f us (bare C loop) |"
          % (what, cm / 1000, cc / 1000))
    w("| relay RSS, idle after start | %s kB | |" % kfmt(r["rss_idle_kb"]))
    if "rss_1000_kb" in r:
        w("| relay RSS with %s registered entries | %s kB | < 4 096 kB (target) |" % (kfmt(REG_ENTRIES), kfmt(r["rss_1000_kb"])))
    if "register_1000_s" in r:
        w("| registering %s entries (NOTICEs sent until the relay answers a ping after them) | %.2f s | |"
          % (kfmt(REG_ENTRIES), r["register_1000_s"]))
        w("| unregistering them (NOTICEs, queues removed, program exit) | %.2f s | |" % r["unregister_1000_s"])
    w("| relay RSS under the floods (max sampled) | %s kB | |" % kfmt(r["rss_flood_kb"]))
    if "idle" in r:
        i = r["idle"]
        w("| relay CPU over %.0f s idle (%d threads, %s entries) | %d ns, %d ticks, %d wake-ups | 0 (target) |"
          % (i["seconds"], i["threads"], kfmt(REG_ENTRIES), i["cpu_ns"], i["cpu_ticks"], i["wakeups"]))
    sz = r["sizes"]
    w("| `libmipc.so` stripped (unstripped) | %s bytes (%s) | < 614 400 (target) |"
      % (kfmt(sz["libmipc.so"]["stripped"]), kfmt(sz["libmipc.so"]["unstripped"])))
    w("| `mipc_main` stripped (unstripped) | %s bytes (%s) | |"
      % (kfmt(sz["mipc_main"]["stripped"]), kfmt(sz["mipc_main"]["unstripped"])))
    w("")
    w("CPU per message is the relay process's utime + stime (10 ms ticks, threads that ended")
    w("included) over a flood. Idle CPU is the kernel's per-thread accounting in nanoseconds")
    w("(`se.sum_exec_runtime` of every relay thread) and wake-ups the relay threads' context")
    w("switches. The %s-entry table is filled by" % kfmt(REG_ENTRIES))
    w("`bench/reg1000.c` (hand-built NOTICEs for %s private queues, confirmed by a ping);" % kfmt(REG_ENTRIES))
    w("the idle measurement runs while they are registered.")
    w("")
    for line in wrap(HOP_COST_TEXT):
        w(line)
    w("")
    w("## How it is measured")
    w("")
    w("`make bench` builds the release binaries (`cargo build --release`) and the C programs of")
    w("`bench/` (`-O2 -Wall -Wextra -Werror`), then runs `bench/run_bench.py`, which starts a")
    w("`mipc_main` and the minimal C relay on fresh random keys (`MIPC_ROOT_KEY`), runs the")
    w("phases above, stops everything and removes every queue it made. Programs: `pingpong.c`")
    w("(floor), `crelay.c` (minimal relay / bare loop), `rawpeer.c` (its raw C caller and")
    w("server), `mipc_peer.c` (libmipc caller, server, sender, receiver), `event_peer.c`")
    w("(publisher and subscriber of the fan-out phase), `reg1000.c`.")
    w("`make bench BENCH_DIRECT=1` adds rows for the sync call run a second time with")
    w("`BENCH_DIRECT_ENV` (default `MIPC_DIRECT=1`) set in the caller and server.")
    w("`make bench BENCH_BASELINE=REV` builds the release of git revision REV (its relay and")
    w("library, with the same `mipc_peer.c`) and times its sync call in the same rounds, as its")
    w("own rows and a target: the way to show that a change costs nothing.")
    errors = r.get("errors") or []
    if errors:
        w("")
        w("## Errors in this run")
        w("")
        for e in errors:
            w("- %s" % e)
    w("")
    return "\n".join(L)
