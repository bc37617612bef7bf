"""Sizes of each phase of `make bench` (fixed counts, sized for a few seconds each on a 2-core
VM) and the limits its targets check: bench/run_bench.py runs the phases, bench/bench_report.py
writes what they measured."""

LAT_ROUNDS_PINNED = 10         # interleaved rounds, one CPU (short rounds: a burst of
LAT_COUNT_PINNED = 2000        #   outside load hits every variant alike); calls per round
LAT_ROUNDS_SCHED = 5           # same, scheduler's placement (each caller process lands
LAT_COUNT_SCHED = 2000         #   anew; cross-CPU wake-ups make these calls slower); the
                               #   issue-11 target takes the median of the rounds' p50s
LAT_WARMUP = 200
FLOOD_TOTAL_SPLIT = 240000     # async messages per flood, relay on its own CPU
FLOOD_REPS_SPLIT = 3           # repetitions (alternated); the best one is reported
FLOOD_TOTAL_SCHED = 100000     # async messages per flood, scheduler's placement
FLOOD_SENDERS = (1, 4, 16)
FLOOD_RECEIVERS = (1, 4)
FLOOD_PAYLOAD = 100
SYNC_TOTAL = 80000             # sync calls per throughput run (40 000 swung 67-99 %)
EVENT_SUBSCRIBERS = (1, 10, 100)  # subscribers of the fan-out phase
EVENT_DELIVERIES = 60000       # deliveries per fan-out run (events = this / subscribers)
EVENT_PAYLOAD = 64             # bytes of data per event
SYNC_REPS = 7                  # repetitions (alternated); the medians are compared, as for
                               #   the p50s (the best runs' ratio ranged 90-108 %, issue 11 §2)
SYNC_CALLERS = (4, 16)
ROOTQ_BYTES = (16384, 262144)  # root queue capacities compared (issue 11 §3)
ROOTQ_SENDERS = 16             # the burst: 16 daemons send 8 full-size messages each at once
ROOTQ_PER_SENDER = 8
ROOTQ_PAYLOAD = 2000
ROOTQ_REPS = 3                 # repetitions; the median is reported
BACKLOG_BOUNDS = (0, 16, 128, 1024)  # MIPC_BACKLOG_MAX values of the backlog curve (issue 11 §1)
BACKLOG_FLOODS = ((1, 1), (4, 1), (4, 4))  # its floods (relay on its own CPU)
BACKLOG_REPS = 2               # runs per flood and bound: best handled, delivered and lost pooled
REG_ENTRIES = 1000
IDLE_SECONDS = 10.0

RSS_LIMIT_KB = 4 * 1024
LIB_LIMIT_BYTES = 600 * 1024
SUITE_LIMIT_S = 180.0
