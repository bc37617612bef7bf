# mipc-rs: the C side of the build. Rust is built by cargo; this file builds the C tests,
# runs the demo, the test suite and the benchmarks.
#
#   make            the library (target/release/libmipc.{so,a}, libmipc.so.1 link), mipc_main, the C programs
#   make demo       relay + middleware daemons talking, then everything stopped and removed
#   make test       every check and test (what CI runs): scripts/test.sh
#   make bench      the benchmark suite, rewrites docs/PERFORMANCE.md
#   make soak       the long soak test (about a minute of traffic)
#   make header     regenerate include/mipc.h after changing an export
#   make install    install the library, header, mipc.pc, binaries and init files (install.mk:
#                   PREFIX=/usr/local DESTDIR= LIBDIR BINDIR INCLUDEDIR, TARGET=<triple> for a
#                   cross build, INIT=procd|systemd|sysv to put one init file in its system place)
#   make uninstall  remove what `make install` put there (same variables)
#   make test-install  install into temporary DESTDIRs and check the tree, the init files and the
#                   package recipes (scripts/test-install.sh, scripts/test-packaging.sh)
#   make cross      ARM builds (TARGET=<triple> for one), make test-cross their tests (cross.mk)

CARGO ?= cargo

.PHONY: all lib header demo test bench soak clean

all: lib c-tests

# The library's SONAME is libmipc.so.1 (build.rs): programs linked in the build tree need that
# name next to cargo's libmipc.so.
lib:
	$(CARGO) build --release --workspace
	ln -sfn libmipc.so target/release/libmipc.so.1

header:
	MIPC_WRITE_HEADER=1 $(CARGO) build --release -p mipc

include c-tests/c-tests.mk
include install.mk
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
