# bench.mk: the benchmark suite (docs/PERFORMANCE.md). Included by the top-level Makefile,
# and usable on its own from the repository root:
#
#   make -f bench/bench.mk bench                 build (cargo + C), run, rewrite the docs
#   make -f bench/bench.mk bench BENCH_DIRECT=0  leave out the timing of the sync call a second time with
#                                                $(BENCH_DIRECT_ENV) set in the caller and
#                                                server (the library's direct path), as its
#                                                own rows, compared to the floor
#   make -f bench/bench.mk bench BENCH_BASELINE=REV  also time the sync call of git revision REV
#                                                (a previous release: its mipc_main and libmipc,
#                                                built into bench/build/baseline/) in the same rounds
#   make -f bench/bench.mk bench BENCH_RELAY_ENV='MIPC_POLL_US=5'
#                                                run this tree's mipc_main with that environment
#                                                in every phase (e.g. its root-queue poll)
#   make -f bench/bench.mk bench-build           only build the programs
#   make -f bench/bench.mk bench-clean           remove bench/build/
#
# Targets defined here: bench bench-run bench-build bench-programs bench-baseline bench-clean. Every
# variable starts with BENCH_, so nothing clashes with the including Makefile.

BENCH_CARGO    ?= cargo
BENCH_PYTHON   ?= python3
BENCH_CC       ?= $(CC)
BENCH_DIR      := bench
BENCH_BUILD    := bench/build
BENCH_INCLUDE  := include
BENCH_LIBDIR   := target/release
BENCH_CFLAGS   := -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I$(BENCH_INCLUDE) -I$(BENCH_DIR)
BENCH_LDLIBS   := -lpthread
BENCH_MIPC_LIB := -L$(BENCH_LIBDIR) -lmipc -Wl,-rpath,$(abspath $(BENCH_LIBDIR))

# The direct-path rows (on by default; BENCH_DIRECT=0 leaves them out); BENCH_DIRECT_ENV is what the
# second run of the sync-call benchmark gets in its environment.
BENCH_DIRECT     ?= 1
BENCH_DIRECT_ENV ?= MIPC_DIRECT=1
# Environment of this tree's mipc_main (empty: its defaults).
BENCH_RELAY_ENV  ?=
# Extra arguments for the driver (see python3 bench/run_bench.py --help).
BENCH_ARGS       ?=

# A previous release to compare with (a git revision; empty: none).
BENCH_BASELINE   ?=
BENCH_BASE_DIR   := $(BENCH_BUILD)/baseline
ifneq ($(BENCH_BASELINE),)
BENCH_BASE_ARG   := --baseline $(BENCH_BASE_DIR) --baseline-label "$(BENCH_BASELINE)"
else
BENCH_BASE_ARG   :=
endif

ifeq ($(BENCH_DIRECT),1)
BENCH_DIRECT_ARG := --direct-env "$(BENCH_DIRECT_ENV)"
else
BENCH_DIRECT_ARG :=
endif

# Raw C: no libmipc (the floor, the minimal relay and its peers, the table filler).
BENCH_RAW_PROGS  := pingpong crelay rawpeer reg1000 queue_costs
# Linked against libmipc.
BENCH_MIPC_PROGS := mipc_peer synccall event_peer
BENCH_BINS := $(addprefix $(BENCH_BUILD)/,$(BENCH_RAW_PROGS) $(BENCH_MIPC_PROGS))
BENCH_DEPS := $(BENCH_DIR)/common.h $(BENCH_INCLUDE)/mipc.h

.PHONY: bench bench-run bench-build bench-programs bench-cargo bench-baseline bench-clean

bench: bench-run

bench-run: bench-build
	$(BENCH_PYTHON) $(BENCH_DIR)/run_bench.py --repo . --build $(BENCH_BUILD) \
	    --started-at "$$(cat $(BENCH_BUILD)/.started 2>/dev/null || echo 0)" \
	    $(BENCH_DIRECT_ARG) $(BENCH_BASE_ARG) --relay-env "$(BENCH_RELAY_ENV)" $(BENCH_ARGS)

# cargo first (one build at a time), then the C programs against the fresh library.
bench-build: bench-cargo
	$(MAKE) --no-print-directory -f $(BENCH_DIR)/bench.mk bench-programs
ifneq ($(BENCH_BASELINE),)
	$(MAKE) --no-print-directory -f $(BENCH_DIR)/bench.mk bench-baseline
endif

# The baseline: REV's sources exported (git archive, no worktree), built release into their
# own target dir, and today's mipc_peer.c linked against that library (legacy API only).
bench-baseline:
	@rev=$$(git rev-parse --verify "$(BENCH_BASELINE)^{commit}") || exit 1; \
	src=$(BENCH_BASE_DIR)/src; \
	if [ "$$(cat $(BENCH_BASE_DIR)/.rev 2>/dev/null)" != "$$rev" ]; then \
	  rm -rf $$src && mkdir -p $$src && git archive "$$rev" | tar -x -C $$src && \
	  echo "$$rev" > $(BENCH_BASE_DIR)/.rev; fi; \
	$(BENCH_CARGO) build --release --manifest-path $$src/Cargo.toml -p mipc -p mipc-relay \
	    --target-dir $(abspath $(BENCH_BASE_DIR))/target && \
	lib=$(abspath $(BENCH_BASE_DIR))/target/release && \
	ln -sfn libmipc.so $$lib/libmipc.so.1 && \
	cp $$lib/mipc_main $(BENCH_BASE_DIR)/mipc_main && \
	$(BENCH_CC) $(BENCH_CFLAGS) -o $(BENCH_BASE_DIR)/mipc_peer $(BENCH_DIR)/mipc_peer.c \
	    -L$$lib -lmipc -Wl,-rpath,$$lib $(BENCH_LDLIBS)

# .started: when the build began, so the reported duration includes it.
bench-cargo:
	@mkdir -p $(BENCH_BUILD) && date +%s.%N > $(BENCH_BUILD)/.started
	$(BENCH_CARGO) build --release --workspace
	ln -sfn libmipc.so $(BENCH_LIBDIR)/libmipc.so.1

bench-programs: $(BENCH_BINS)

$(BENCH_BUILD):
	mkdir -p $@

$(addprefix $(BENCH_BUILD)/,$(BENCH_RAW_PROGS)): $(BENCH_BUILD)/%: $(BENCH_DIR)/%.c $(BENCH_DEPS) | $(BENCH_BUILD)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $< $(BENCH_LDLIBS)

$(addprefix $(BENCH_BUILD)/,$(BENCH_MIPC_PROGS)): $(BENCH_BUILD)/%: $(BENCH_DIR)/%.c $(BENCH_DEPS) $(BENCH_LIBDIR)/libmipc.so | $(BENCH_BUILD)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $< $(BENCH_MIPC_LIB) $(BENCH_LDLIBS)

bench-clean:
	rm -rf $(BENCH_BUILD)
