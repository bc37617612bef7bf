# mipc-rs: the C side of the build. Rust is built by cargo; this file builds the C tests,
# runs the demo, the test suite and the benchmarks.
#
#   make            the library (target/release/libmipc.{so,a}), mipc_main, the C programs
#   make demo       relay + middleware daemons talking, then everything stopped and removed
#   make test       every check and test (what CI runs): scripts/test.sh
#   make bench      the benchmark suite, rewrites docs/PERFORMANCE.md
#   make soak       the long soak test (about a minute of traffic)
#   make header     regenerate include/mipc.h after changing an export
#   make cross      ARM builds (TARGET=<triple> for one), make test-cross their tests (cross.mk)

CARGO ?= cargo

.PHONY: all lib header demo test bench soak clean

all: lib c-tests

lib:
	$(CARGO) build --release --workspace

header:
	MIPC_WRITE_HEADER=1 $(CARGO) build --release -p mipc

include c-tests/c-tests.mk
include cross.mk
-include bench/bench.mk

c-tests c-tests-asan: lib

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

soak: all
	MIPC_SOAK=long $(CARGO) test --release -p mipc-relay --test reliability soak -- --nocapture

clean: c-tests-clean
	$(CARGO) clean
